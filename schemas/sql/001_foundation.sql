-- Foundation: offset fences and message de-duplication shared by every processor.

-- The last Kafka offset each processor applied per partition, written in the same
-- transaction as the state it produced: a redelivered record at or below the fence
-- changes nothing. published_offset is the last offset whose outputs are on Kafka
-- (what "drained" means for the processor downstream).
CREATE TABLE applied_offsets (
    consumer    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    last_offset bigint      NOT NULL,
    published_offset bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

-- messageIds a processor has applied, for de-duplication within a window
-- (CDP_DEDUP_WINDOW_S, default 7 days); rows older than the window are purged.
CREATE TABLE seen_messages (
    consumer   text        NOT NULL,
    message_id text        NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX seen_messages_seen_at ON seen_messages (seen_at);

-- Write keys of the HTTP collector: each belongs to a source with a channel.
CREATE TABLE sources (
    name           text PRIMARY KEY,
    channel        text        NOT NULL,
    write_key_hash text        NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
