-- Activation (docs/activation.md): per-customer facts, pending timers, one decision
-- per trigger (UNIQUE action_id: exactly once in effect), webhook deliveries.

-- What activation knows of a customer, folded commutatively from their events:
-- the earliest event carrying a user id or an email, the latest stated marketing
-- consent and touchpoints per channel. Re-keyed to the winner on a merge.
CREATE TABLE activation_profiles (
    customer_id   text PRIMARY KEY,
    identified_at timestamptz,
    consent_at    timestamptz,
    consent_mid   text,
    consent_value boolean,
    channels      jsonb       NOT NULL DEFAULT '{}'
);

-- Events that cancel a pending action (the rules' `unless` events, e.g. purchases).
CREATE TABLE activation_cancels (
    message_id  text PRIMARY KEY,
    customer_id text        NOT NULL,
    event       text        NOT NULL,
    event_time  timestamptz NOT NULL
);
CREATE INDEX activation_cancels_customer ON activation_cancels (customer_id, event, event_time);

-- Triggers waiting for the watermark to reach due_at.
CREATE TABLE activation_timers (
    action_id          text PRIMARY KEY,
    rule               text        NOT NULL,
    customer_id        text        NOT NULL,
    trigger_message_id text        NOT NULL,
    trigger_at         timestamptz NOT NULL,
    due_at             timestamptz NOT NULL,
    deferred           boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activation_timers_due ON activation_timers (due_at);
CREATE INDEX activation_timers_customer ON activation_timers (customer_id);

-- One decision per trigger: fired (published on cdp.actions) or suppressed with the
-- reason. src_* is the input record whose batch made the decision: when that record
-- is redelivered (a crash between commit and publish), its actions are re-published.
CREATE TABLE activation_actions (
    action_id          text PRIMARY KEY,
    rule               text        NOT NULL,
    action             text        NOT NULL,
    customer_id        text        NOT NULL,
    trigger_message_id text        NOT NULL,
    trigger_at         timestamptz NOT NULL,
    due_at             timestamptz NOT NULL,
    deferred           boolean     NOT NULL DEFAULT false,
    outcome            text        NOT NULL,
    payload            jsonb,
    src_topic          text        NOT NULL,
    src_partition      integer     NOT NULL,
    src_offset         bigint      NOT NULL,
    decided_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activation_actions_customer ON activation_actions (customer_id, action, due_at);
CREATE INDEX activation_actions_src ON activation_actions (src_topic, src_partition, src_offset);
CREATE INDEX activation_actions_decided ON activation_actions (decided_at);

-- Webhook deliveries (the outbox `cdp actions deliver` works through): written in the
-- processor's transaction with the action; status pending → delivered, or dead after
-- max_attempts (the dead-letter: last_error says why; `cdp actions replay` retries).
CREATE TABLE activation_deliveries (
    action_id       text        NOT NULL,
    destination     text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_status     integer,
    delivered_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (action_id, destination)
);
CREATE INDEX activation_deliveries_due ON activation_deliveries (status, next_attempt_at);
