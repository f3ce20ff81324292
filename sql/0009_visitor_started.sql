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
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('visitor/' || p_site || '/' || p_visitor, 0));
    -- The visitor's sessions that started after this one are returning now.
    UPDATE sessions SET is_returning = true, updated_at = now()
    WHERE site_id = p_site AND visitor_id = p_visitor AND id <> p_session
      AND started_at > p_started AND NOT is_returning;
    -- This one is when one started before it (min: the visitor index's
    -- order, whatever the statistics).
    RETURN coalesce((SELECT min(started_at) FROM sessions
                     WHERE site_id = p_site AND visitor_id = p_visitor AND id <> p_session) < p_started, false);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION sessions_visitor_started(bigint, uuid, uuid, timestamptz);
