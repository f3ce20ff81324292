-- +goose Up
-- The daily integrity audit (pkg/audit, docs/audit.md) reads one window of
-- received data: events by received_at and sessions by created_at (the
-- server's time of a session's first batch). Both only grow with the
-- insertion order, so a BRIN index (a few pages, next to nothing to
-- maintain on the ingest path) finds the window's block ranges. created_at
-- is never updated, so indexing it keeps session updates HOT. A block range
-- not yet summarized matches every window (it is read and rechecked), so
-- autosummarize has autovacuum summarize each range once it is full rather
-- than at the next vacuum of the table, which for events (insert-only)
-- comes only after a fifth of its size has been added.
CREATE INDEX events_received_brin ON events USING brin (received_at) WITH (autosummarize = on);
CREATE INDEX sessions_created_brin ON sessions USING brin (created_at) WITH (autosummarize = on);

-- One row per audit run: its window of received data [window_start,
-- window_end), what started it, and how long it took. site_id NULL is a run
-- over every site.
CREATE TABLE audit_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger           text NOT NULL CHECK (trigger ~ '^[a-z_]{1,32}$'),
    site_id           bigint REFERENCES sites (id) ON DELETE CASCADE,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    threshold_percent double precision NOT NULL CHECK (threshold_percent BETWEEN 0 AND 100),
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    duration_ms       bigint,
    -- running until it finishes; failed when a check could not run.
    status            text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    error             text,
    CHECK (window_start < window_end)
);
CREATE INDEX audit_runs_started_idx ON audit_runs (started_at);

-- What a run found: one row per (check, site) with at least one anomaly,
-- alarming or not. ratio_percent = 100 * count / denominator; alarm is
-- ratio_percent > the run's threshold.
CREATE TABLE audit_findings (
    run_id        bigint NOT NULL REFERENCES audit_runs (id) ON DELETE CASCADE,
    code          text NOT NULL CHECK (code ~ '^AUD[0-9]{3}$'),
    name          text NOT NULL,
    site_id       bigint NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    count         bigint NOT NULL CHECK (count > 0),
    denominator   bigint NOT NULL CHECK (denominator >= count),
    ratio_percent double precision NOT NULL,
    alarm         boolean NOT NULL,
    -- Up to five ids of the rows at fault (event ids or session ids).
    sample_ids    text[] NOT NULL CHECK (cardinality(sample_ids) BETWEEN 1 AND 5),
    PRIMARY KEY (run_id, code, site_id)
);
CREATE INDEX audit_findings_site_idx ON audit_findings (site_id, code);

-- +goose Down
DROP TABLE audit_findings;
DROP TABLE audit_runs;
DROP INDEX sessions_created_brin;
DROP INDEX events_received_brin;
