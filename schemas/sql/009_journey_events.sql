-- Journey: every event the journey processor folded into a summary, kept as its
-- single-event summary (the same JSON as journey.summary, no identifiers, no
-- plaintext) with the identifier it was resolved by. A split of a merge
-- (`cdp identity split`) re-attributes each event through node_id to the customer
-- that identifier belongs to after the split and recomputes those customers' journey
-- rows from their own events (docs/journey.md, "Merges and splits").
CREATE TABLE journey_events (
    message_id  text PRIMARY KEY,
    -- the event's strongest usable identifier (identities.node_id), the one identity
    -- resolution attributed it by; NULL for resolved records that do not carry one
    node_id     text,
    -- the customer the event was folded into when it was applied or last recomputed
    customer_id text  NOT NULL,
    summary     jsonb NOT NULL
);
CREATE INDEX journey_events_node ON journey_events (node_id);
CREATE INDEX journey_events_customer ON journey_events (customer_id);
