-- Least-privilege roles, used by the code when configured (CDP_DB_ROLE_WORKER,
-- CDP_DB_ROLE_READER): the login user becomes one of them with SET ROLE.
--   cdp_writer: the stream processors and the collector: read and write rows, no DDL.
--   cdp_reader: analytics: reads customers, identities (hashed and masked), merges,
--               conflicts, journey and transitions; never key hashes, suppression
--               keys, evidence links or internal bookkeeping. No plaintext PII and no
--               hashing secret exist in the database at all.
--   The owner (the user that runs `cdp db migrate`) keeps DDL.
-- Roles are cluster-wide: they are created when this user may create roles, and the
-- grants are made for the current schema.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_writer') THEN
        CREATE ROLE cdp_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_reader') THEN
        CREATE ROLE cdp_reader NOLOGIN;
    END IF;
    EXECUTE format('GRANT cdp_writer, cdp_reader TO %I', current_user);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cdp roles not created (no CREATEROLE privilege): %', SQLERRM;
END
$$;

DO $$
DECLARE
    s text := current_schema();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_writer') THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO cdp_writer, cdp_reader', s);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO cdp_writer', s);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO cdp_writer', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO cdp_writer', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO cdp_writer', s);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.schema_migrations FROM cdp_writer', s);
    EXECUTE format('GRANT SELECT ON %I.customers, %I.identities, %I.customer_redirects, %I.merges,'
                   ' %I.conflicts, %I.journey, %I.transitions, %I.watermarks, %I.identity_counters'
                   ' TO cdp_reader', s, s, s, s, s, s, s, s, s);
END
$$;
