-- +goose Up
-- Alert state: one row per watchtower check (by its stable code). A check that
-- starts failing notifies once, repeats every ALERT_REPEAT_EVERY while it keeps
-- failing, and sends RESOLVED when it passes. Each transition is a conditional
-- UPDATE held in a transaction until Telegram has the message, so two runs at
-- the same moment send once and a failed send leaves the row as it was.
CREATE TABLE alert_state (
    code             text PRIMARY KEY CHECK (code ~ '^[A-Z]+[0-9]+$'),
    name             text NOT NULL,
    firing           boolean NOT NULL DEFAULT false,
    -- Start of the current incident (or of the last one, once resolved).
    failing_since    timestamptz,
    last_notified_at timestamptz,
    -- Messages sent for the current incident: 1 for the first, then repeats.
    notifications    integer NOT NULL DEFAULT 0,
    resolved_at      timestamptz,
    -- The figures behind the last message.
    figures          jsonb NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE alert_state;
