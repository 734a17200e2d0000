-- Read keys of the profile API (GET /v1/profiles/...): separate from the write keys
-- of `sources`, so a write key (public in browsers) can never read a profile and a
-- read key can never post events. Only the SHA-256 of a key is stored.
CREATE TABLE read_keys (
    name       text PRIMARY KEY,
    key_hash   text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
