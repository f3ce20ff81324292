-- +goose Up
-- Daily analytics (shared/docs/STATS-API.md, version 1): every figure is
-- defined once, here, and read the same way from the materialized view (past
-- days) and from the live rows (today and any day the view has not seen
-- complete), so that both give the same numbers to the last digit.

-- The summable figures of non-bot sessions per site, site-local day, traffic
-- source and device type, for the days p_from..p_to of one site (p_site_id)
-- or of every site (NULL). Summable means
-- that rows add up exactly: an average is a sum of sums divided by a sum of
-- counts, never an average of averages. The view below is this function over
-- all days; pkg/stats calls it for the live days. It is a plain SQL function
-- (STABLE, not STRICT), so PostgreSQL inlines it into the calling query and
-- uses sessions_site_started_idx for the time range.
--
-- The range on started_at is widened by 3 hours because a site-local
-- midnight that is skipped or repeated by a clock change converts to an
-- instant up to an hour off; the day test on the same row is exact.
-- +goose StatementBegin
CREATE FUNCTION analytics_daily_sums(p_site_id bigint, p_from date, p_to date)
RETURNS TABLE (
    site_id            bigint,
    day                date,
    traffic_source     text,
    device_type        text,
    -- The site settings the figures were computed with: a day counted under
    -- another time zone or lead threshold is not reused (pkg/stats).
    timezone           text,
    lead_threshold     smallint,
    total_sessions     bigint,
    pageviews          bigint,
    total_conversions  bigint,
    converted_sessions bigint,
    qualified_leads    bigint,
    duration_sum_s     numeric,
    bounced_sessions   bigint
)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT st.id,
           f.day,
           s.traffic_source,
           s.device_type,
           st.timezone,
           st.lead_threshold,
           count(*),
           coalesce(sum(s.pageviews), 0),
           coalesce(sum(f.conversions), 0),
           count(*) FILTER (WHERE f.conversions > 0),
           count(*) FILTER (WHERE s.lead_score > st.lead_threshold),
           -- extract() of an interval is numeric: microseconds add up exactly.
           coalesce(sum(f.duration_s), 0),
           count(*) FILTER (WHERE NOT (f.duration_s >= 10 OR s.pageviews >= 2 OR f.conversions > 0))
    FROM sites st
    JOIN sessions s ON s.site_id = st.id
    CROSS JOIN LATERAL (SELECT
        (s.started_at AT TIME ZONE st.timezone)::date AS day,
        s.phone_clicks + s.whatsapp_clicks + s.form_submits AS conversions,
        extract(epoch FROM s.last_active_at - s.started_at) AS duration_s) f
    WHERE (p_site_id IS NULL OR st.id = p_site_id)
      AND NOT s.is_bot
      AND s.started_at >= (p_from::timestamp AT TIME ZONE st.timezone) - interval '3 hours'
      AND s.started_at < ((p_to + 1)::timestamp AT TIME ZONE st.timezone) + interval '3 hours'
      AND f.day BETWEEN p_from AND p_to
    GROUP BY st.id, f.day, s.traffic_source, s.device_type
$$;
-- +goose StatementEnd

-- The figures that are ratios, from summed columns: the view's own columns
-- and every answer of pkg/stats go through these two.
-- +goose StatementBegin
CREATE FUNCTION analytics_avg_duration_s(duration_sum_s numeric, sessions numeric)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(sessions, 0) = 0 THEN 0 ELSE (duration_sum_s / sessions)::double precision END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION analytics_bounce_rate(bounced_sessions numeric, sessions numeric)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(sessions, 0) = 0 THEN 0 ELSE bounced_sessions::double precision / sessions::double precision END
$$;
-- +goose StatementEnd

-- One row per (site, day, traffic source, device type) with sessions.
-- Created with its data, since REFRESH ... CONCURRENTLY needs a populated
-- view; that first population is not recorded as a refresh, so reads stay
-- all live until the first one (STATS-API.md, "no refresh yet").
CREATE MATERIALIZED VIEW mv_daily_analytics_summary AS
SELECT d.*,
       analytics_avg_duration_s(d.duration_sum_s, d.total_sessions) AS avg_duration,
       analytics_bounce_rate(d.bounced_sessions, d.total_sessions) AS bounce_rate
FROM analytics_daily_sums(NULL, '-infinity', 'infinity') d
WITH DATA;

-- The four keys: what lets it refresh CONCURRENTLY, and the read path's index.
CREATE UNIQUE INDEX mv_daily_analytics_summary_key
    ON mv_daily_analytics_summary (site_id, day, traffic_source, device_type);

-- Every refresh, successful or not. The last successful one's started_at is
-- the view's refreshed_at: the view holds what was committed by then.
CREATE TABLE analytics_refreshes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    ms          double precision NOT NULL,
    -- Rows in the view after a successful refresh.
    rows        bigint,
    -- Who asked: pg_cron, cli, dev, watchtower, seed, ...
    trigger     text NOT NULL CHECK (trigger ~ '^[a-z][a-z0-9_-]{0,31}$'),
    ok          boolean NOT NULL,
    error       text,
    CHECK (ok = (error IS NULL))
);
CREATE INDEX analytics_refreshes_ok_started_idx ON analytics_refreshes (started_at DESC) WHERE ok;

-- The one refresh that pg_cron, `opsmantik run refresh-analytics`, the local
-- stack and the watchtower all call, as one statement (so that it works
-- through a transaction-mode pooler): SELECT * FROM refresh_daily_analytics('cli').
-- CONCURRENTLY: readers go on reading the previous rows while it runs.
-- A failure is recorded and returned (ok = false) rather than raised, since
-- raising would roll the record back; callers turn it into their error.
-- +goose StatementBegin
CREATE FUNCTION refresh_daily_analytics(p_trigger text) RETURNS analytics_refreshes
LANGUAGE plpgsql AS $$
DECLARE
    t0  timestamptz := clock_timestamp();
    t1  timestamptz;
    n   bigint;
    msg text;
    r   analytics_refreshes;
BEGIN
    BEGIN
        REFRESH MATERIALIZED VIEW CONCURRENTLY mv_daily_analytics_summary;
        SELECT count(*) INTO n FROM mv_daily_analytics_summary;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        msg := coalesce(nullif(msg, ''), 'refresh failed');
    END;
    t1 := clock_timestamp();
    INSERT INTO analytics_refreshes (started_at, finished_at, ms, rows, trigger, ok, error)
    VALUES (t0, t1, extract(epoch FROM t1 - t0) * 1000,
            CASE WHEN msg IS NULL THEN n END, p_trigger, msg IS NULL, msg)
    RETURNING * INTO r;
    RETURN r;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION refresh_daily_analytics(text);
DROP TABLE analytics_refreshes;
DROP MATERIALIZED VIEW mv_daily_analytics_summary;
DROP FUNCTION analytics_bounce_rate(numeric, numeric);
DROP FUNCTION analytics_avg_duration_s(numeric, numeric);
DROP FUNCTION analytics_daily_sums(bigint, date, date);
