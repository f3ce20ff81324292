-- +goose Up
-- Session times (PROTOCOL.md "Session times"): last_seen_at is the latest of
-- any event or heartbeat; last_active_at the latest of a non-heartbeat event
-- or an active heartbeat, so that an idle tab left open does not make a long
-- visit. Duration is last_active_at - started_at. active_at is the latest
-- active time itself (NULL until one arrives): the ingest path merges it with
-- GREATEST and sets last_active_at = GREATEST(started_at, active_at), so that
-- both are the same whatever order batches arrive in.
ALTER TABLE sessions ADD COLUMN active_at timestamptz;
ALTER TABLE sessions ADD COLUMN last_active_at timestamptz;
UPDATE sessions SET last_active_at = last_seen_at, active_at = last_seen_at;
ALTER TABLE sessions ALTER COLUMN last_active_at SET NOT NULL;

-- The clock-skew correction is decided once, by the batch that creates the
-- session, and applied to every later batch of it, so that a replay with
-- another network latency stores the same times.
ALTER TABLE sessions ADD COLUMN clock_skew_ms bigint NOT NULL DEFAULT 0;

-- Client-reported delivery failures this session has contributed to the
-- ingest error rate (capped per session, see pkg/ingest).
ALTER TABLE sessions ADD COLUMN client_failures integer NOT NULL DEFAULT 0;

-- Every batch moves last_seen_at: an index on it makes every session update a
-- non-HOT one. The watchtower counts sessions that started in its window
-- instead; heartbeat updates then change no indexed column.
DROP INDEX sessions_live_last_seen_idx;
CREATE INDEX sessions_live_started_idx ON sessions (started_at) WHERE NOT is_bot;
-- Room on each page for the updated row versions (HOT).
ALTER TABLE sessions SET (fillfactor = 70);

-- The lead score is a generated column: a pure function of the row's
-- aggregates, so it can never be stale, whatever order batches commit in.
-- The expression is rendered from pkg/leadscore's weights table by
-- leadscore.Default().SQL(leadscore.SessionColumns); a test keeps the two equal.
ALTER TABLE sessions DROP COLUMN lead_score;
ALTER TABLE sessions ADD COLUMN lead_score smallint GENERATED ALWAYS AS (
    (CASE WHEN is_bot THEN 0 ELSE LEAST(100, GREATEST(0, CASE WHEN phone_clicks > 0 THEN 45 + LEAST(LEAST(phone_clicks::bigint - 1, 3) * 10, 20) ELSE 0 END + CASE WHEN whatsapp_clicks > 0 THEN 40 + LEAST(LEAST(whatsapp_clicks::bigint - 1, 3) * 10, 20) ELSE 0 END + CASE WHEN form_submits > 0 THEN 50 + LEAST(LEAST(form_submits::bigint - 1, 3) * 10, 20) ELSE 0 END + CASE WHEN engaged_ms >= 300000 THEN 15 WHEN engaged_ms >= 120000 THEN 10 WHEN engaged_ms >= 30000 THEN 5 ELSE 0 END + CASE WHEN max_scroll >= 90 THEN 10 WHEN max_scroll >= 50 THEN 5 ELSE 0 END + CASE WHEN pageviews >= 4 THEN 10 WHEN pageviews >= 2 THEN 5 ELSE 0 END + CASE WHEN is_returning THEN 5 ELSE 0 END)) END)::smallint
) STORED;

-- Site time zones must be ones PostgreSQL knows: every per-day query uses them.
-- +goose StatementBegin
CREATE FUNCTION sites_check_timezone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = NEW.timezone) THEN
        RAISE EXCEPTION 'timezone "%" is not a time zone PostgreSQL knows', NEW.timezone
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER sites_timezone_valid BEFORE INSERT OR UPDATE OF timezone ON sites
    FOR EACH ROW EXECUTE FUNCTION sites_check_timezone();

-- Client-reported failures per client (a hash of its IP address) and minute,
-- so that the error rate can leave out what any single client reports.
-- Written only by requests that report failures.
CREATE TABLE ingest_client_failures (
    bucket   timestamptz NOT NULL,
    client   text NOT NULL,
    failures bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, client)
);

-- +goose Down
DROP TABLE ingest_client_failures;
DROP TRIGGER sites_timezone_valid ON sites;
DROP FUNCTION sites_check_timezone();
ALTER TABLE sessions DROP COLUMN lead_score;
ALTER TABLE sessions ADD COLUMN lead_score smallint NOT NULL DEFAULT 0;
ALTER TABLE sessions RESET (fillfactor);
DROP INDEX sessions_live_started_idx;
CREATE INDEX sessions_live_last_seen_idx ON sessions (last_seen_at) WHERE NOT is_bot;
ALTER TABLE sessions DROP COLUMN client_failures;
ALTER TABLE sessions DROP COLUMN clock_skew_ms;
ALTER TABLE sessions DROP COLUMN last_active_at;
ALTER TABLE sessions DROP COLUMN active_at;
