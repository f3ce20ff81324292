-- +goose Up
-- Alert state per (check, site): site_id NULL is the whole installation, a
-- site's id is that site's own alert, which fires, repeats and resolves on
-- its own. NULLS NOT DISTINCT (PostgreSQL 15) makes the installation's row
-- unique too, so ON CONFLICT (code, site_id) works for both.
ALTER TABLE alert_state ADD COLUMN site_id bigint REFERENCES sites (id) ON DELETE CASCADE;
ALTER TABLE alert_state DROP CONSTRAINT alert_state_pkey;
ALTER TABLE alert_state ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
ALTER TABLE alert_state ADD CONSTRAINT alert_state_code_site_key UNIQUE NULLS NOT DISTINCT (code, site_id);

-- WT000 cannot be stored while the database is away; what can be stored is
-- when a watchtower run last reached it. The first run after a gap (no
-- successful run for more than two intervals) resolves WT000 from it.
CREATE TABLE watchtower_runs (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_success_at timestamptz NOT NULL
);

-- Per-site click-id check (WT002 per site): the click-id sessions of one
-- site in a window. Small (click-id sessions only), and it indexes no column
-- that the existing indexes do not, so session updates stay HOT.
CREATE INDEX sessions_site_click_started_idx ON sessions (site_id, started_at)
    WHERE NOT is_bot AND (gclid IS NOT NULL OR wbraid IS NOT NULL OR gbraid IS NOT NULL);

-- +goose Down
DROP INDEX sessions_site_click_started_idx;
DROP TABLE watchtower_runs;
DELETE FROM alert_state WHERE site_id IS NOT NULL;
ALTER TABLE alert_state DROP CONSTRAINT alert_state_code_site_key;
ALTER TABLE alert_state DROP COLUMN id;
ALTER TABLE alert_state DROP COLUMN site_id;
ALTER TABLE alert_state ADD PRIMARY KEY (code);
