-- Journey: each customer's current stage, its commutative summary, and the history
-- of stage transitions.

CREATE TABLE journey (
    customer_id      text PRIMARY KEY,
    stage            text        NOT NULL,
    stage_since      timestamptz NOT NULL,
    stage_message_id text,
    summary          jsonb       NOT NULL,
    cart             jsonb       NOT NULL DEFAULT '[]',
    cart_value       double precision NOT NULL DEFAULT 0,
    cart_updated_at  timestamptz,
    purchase_count   integer     NOT NULL DEFAULT 0,
    first_channel    text,
    first_seen       timestamptz,
    last_event_at    timestamptz,
    last_channel     text,
    flags            text[]      NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journey_stage ON journey (stage);

CREATE TABLE transitions (
    transition_id bigserial PRIMARY KEY,
    customer_id   text        NOT NULL,
    from_stage    text,
    to_stage      text        NOT NULL,
    event_time    timestamptz NOT NULL,
    message_id    text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, from_stage, to_stage, event_time)
);
CREATE INDEX transitions_customer ON transitions (customer_id);

-- The greatest event time each processor has seen: the clock for stuck/lapsed.
CREATE TABLE watermarks (
    consumer   text PRIMARY KEY,
    event_time timestamptz NOT NULL
);
