-- +goose Up
-- A session is returning when the same visitor has a session that started
-- earlier (DESIGN.md). Only a batch that creates a session or moves its
-- start earlier can change a flag: its own session's, or a later session's
-- of the same visitor. The ingest statement (pkg/ingest) calls this
-- function for exactly those batches, so the others neither take the
-- visitor's lock nor look at the visitor's other sessions.
--
-- The lock serialises the calls for one visitor until their transactions
-- end; each statement below takes its snapshot after the lock is held, so it
-- sees every committed session of the visitor, and a concurrent creation
-- waits for this one (two first batches of two tabs cannot miss each other).
-- +goose StatementBegin
CREATE FUNCTION sessions_visitor_started(p_site bigint, p_visitor uuid, p_session uuid, p_started timestamptz)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    first timestamptz; -- the start of the visitor's earliest other session
    later boolean;     -- a later session of the visitor is not yet returning
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('visitor/' || p_site || '/' || p_visitor, 0));
    -- One look at the visitor's other sessions (a few rows on
    -- sessions_site_visitor_idx) tells both things.
    SELECT min(started_at), coalesce(bool_or(started_at > p_started AND NOT is_returning), false)
    INTO first, later
    FROM sessions WHERE site_id = p_site AND visitor_id = p_visitor AND id <> p_session;
    -- Usually this is the visitor's newest session, and nothing is updated.
    IF later THEN
        UPDATE sessions SET is_returning = true, updated_at = now()
        WHERE site_id = p_site AND visitor_id = p_visitor AND id <> p_session
          AND started_at > p_started AND NOT is_returning;
    END IF;
    RETURN coalesce(first < p_started, false);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sessions_visitor_started(bigint, uuid, uuid, timestamptz);
