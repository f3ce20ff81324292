-- +goose Up
-- Sites: one row per tracked website. public_id is what the tracker sends.
CREATE TABLE sites (
    id                           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id                    text NOT NULL UNIQUE CHECK (public_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                         text NOT NULL DEFAULT '',
    domains                      text[] NOT NULL DEFAULT '{}',
    timezone                     text NOT NULL DEFAULT 'UTC',
    currency                     text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    lead_threshold               smallint NOT NULL DEFAULT 80 CHECK (lead_threshold BETWEEN 0 AND 100),
    google_ads_customer_id       text,
    google_ads_conversion_action text,
    stats_api_key_hash           text,
    created_at                   timestamptz NOT NULL DEFAULT now()
);

-- Sessions: one row per visit, keyed by the tracker's session id within a site.
-- Landing context is fixed at creation; aggregates are merged by the ingest path.
CREATE TABLE sessions (
    site_id         bigint NOT NULL REFERENCES sites (id),
    id              uuid NOT NULL,
    visitor_id      uuid,
    started_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    landing_url     text,
    referrer        text,
    referrer_host   text,
    utm_source      text,
    utm_medium      text,
    utm_campaign    text,
    utm_term        text,
    utm_content     text,
    gclid           text,
    wbraid          text,
    gbraid          text,
    traffic_source  text NOT NULL CHECK (traffic_source IN ('google_ads', 'paid', 'organic_search', 'social', 'referral', 'direct')),
    device_type     text NOT NULL CHECK (device_type IN ('mobile', 'tablet', 'desktop', 'unknown')),
    browser         text NOT NULL DEFAULT '',
    os              text NOT NULL DEFAULT '',
    language        text,
    timezone        text,
    screen_width    integer,
    screen_height   integer,
    is_bot          boolean NOT NULL DEFAULT false,
    is_returning    boolean NOT NULL DEFAULT false,
    pageviews       integer NOT NULL DEFAULT 0,
    event_count     integer NOT NULL DEFAULT 0,
    engaged_ms      bigint NOT NULL DEFAULT 0,
    max_scroll      smallint NOT NULL DEFAULT 0,
    phone_clicks    integer NOT NULL DEFAULT 0,
    whatsapp_clicks integer NOT NULL DEFAULT 0,
    form_submits    integer NOT NULL DEFAULT 0,
    custom_events   integer NOT NULL DEFAULT 0,
    lead_score      smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, id)
);
-- Dashboard and per-day queries.
CREATE INDEX sessions_site_started_idx ON sessions (site_id, started_at);
-- Returning-visitor detection.
CREATE INDEX sessions_site_visitor_idx ON sessions (site_id, visitor_id, started_at) WHERE visitor_id IS NOT NULL;
-- Watchtower: any non-bot session active in a window.
CREATE INDEX sessions_live_last_seen_idx ON sessions (last_seen_at) WHERE NOT is_bot;
-- Watchtower: sessions with a Google click id started in a window.
CREATE INDEX sessions_click_started_idx ON sessions (started_at)
    WHERE NOT is_bot AND (gclid IS NOT NULL OR wbraid IS NOT NULL OR gbraid IS NOT NULL);

-- Events: every non-heartbeat event, stored at most once per (site, tracker id).
-- No foreign key to sessions: the ingest statement writes both at once, and the
-- integrity audit reports orphans instead of the ingest path paying for the check.
CREATE TABLE events (
    site_id     bigint NOT NULL,
    id          uuid NOT NULL,
    session_id  uuid NOT NULL,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    url         text,
    data        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (site_id, id)
);
CREATE INDEX events_session_idx ON events (site_id, session_id);
CREATE INDEX events_occurred_brin ON events USING brin (occurred_at);

-- Ingest counters per minute, spread over shards so that concurrent requests
-- do not queue on one row lock. Readers sum over shards.
CREATE TABLE ingest_counters (
    bucket            timestamptz NOT NULL,
    shard             smallint NOT NULL,
    requests          bigint NOT NULL DEFAULT 0,
    rejected_requests bigint NOT NULL DEFAULT 0,
    events_accepted   bigint NOT NULL DEFAULT 0,
    events_duplicate  bigint NOT NULL DEFAULT 0,
    events_rejected   bigint NOT NULL DEFAULT 0,
    bot_requests      bigint NOT NULL DEFAULT 0,
    server_failures   bigint NOT NULL DEFAULT 0,
    client_failures   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, shard)
);

-- +goose Down
DROP TABLE ingest_counters;
DROP TABLE events;
DROP TABLE sessions;
DROP TABLE sites;
