-- Right to be forgotten: people whose data was erased. Stored as a second keyed hash
-- of each of their identifiers (a different key domain from identities.node_id), so
-- the table holds neither plaintext nor the hashes used anywhere else; the identity
-- processor drops future events that carry one of these identifiers.
CREATE TABLE identity_suppressed (
    suppress_hash text PRIMARY KEY,
    forgotten_at  timestamptz NOT NULL DEFAULT now()
);
