-- Identity graph. Identifiers are stored only as keyed hashes (node_id) plus a masked
-- form for display; plaintext never reaches the database.

CREATE TABLE customers (
    customer_id  text PRIMARY KEY,
    anchor_node  text        NOT NULL,
    first_seen   timestamptz,
    last_seen    timestamptz,
    merged_into  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identities (
    node_id       text PRIMARY KEY,
    id_type       text        NOT NULL,
    customer_id   text        NOT NULL,
    masked        text        NOT NULL DEFAULT '',
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    first_channel text        NOT NULL,
    last_channel  text        NOT NULL
);
CREATE INDEX identities_customer ON identities (customer_id);

-- Every customer id that no longer exists maps to the customer that absorbed it.
CREATE TABLE customer_redirects (
    old_id      text PRIMARY KEY,
    customer_id text   NOT NULL,
    merge_id    bigint
);
CREATE INDEX customer_redirects_customer ON customer_redirects (customer_id);

CREATE TABLE merges (
    merge_id     bigserial PRIMARY KEY,
    winner       text        NOT NULL,
    loser        text        NOT NULL,
    linking_node text,
    linking_type text,
    message_id   text,
    event_time   timestamptz,
    reason       text        NOT NULL DEFAULT 'stream',
    created_at   timestamptz NOT NULL DEFAULT now(),
    split_at     timestamptz
);
CREATE INDEX merges_winner ON merges (winner);
CREATE INDEX merges_loser ON merges (loser);

CREATE TABLE conflicts (
    conflict_id bigserial PRIMARY KEY,
    customer_a  text        NOT NULL,
    customer_b  text        NOT NULL,
    id_type     text        NOT NULL,
    node_id     text        NOT NULL,
    message_id  text        NOT NULL,
    event_time  timestamptz NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, node_id, customer_a, customer_b)
);

-- The evidence: which usable identifiers each event carried (only events that link
-- two or more). `cdp identity rebuild` and `split` recompute clusters from it.
CREATE TABLE identity_links (
    message_id text PRIMARY KEY,
    event_time timestamptz NOT NULL,
    channel    text        NOT NULL,
    nodes      text[]      NOT NULL
);

CREATE TABLE identity_blocklist (
    node_id    text PRIMARY KEY,
    id_type    text        NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Identifier values ignored inside valid events, by reason (blocked, malformed, ...).
CREATE TABLE identity_counters (
    reason text PRIMARY KEY,
    count  bigint NOT NULL DEFAULT 0
);
