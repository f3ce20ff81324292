-- +goose Up
-- Where a site's qualified leads go: Google Ads (customer id and conversion
-- action exist since 0001) and, optionally, GA4's Measurement Protocol; the
-- consent sent with each upload.
ALTER TABLE sites ADD COLUMN ga4_measurement_id text CHECK (ga4_measurement_id ~ '^G-[A-Z0-9]{4,20}$');
ALTER TABLE sites ADD COLUMN ga4_api_secret text;
ALTER TABLE sites ADD COLUMN ads_consent text NOT NULL DEFAULT 'unspecified'
    CHECK (ads_consent IN ('granted', 'denied', 'unspecified'));
ALTER TABLE sites ADD CONSTRAINT sites_google_ads_customer_id_digits
    CHECK (google_ads_customer_id ~ '^[0-9]{10}$');

-- The conversion outbox: one row per (site, click id, destination), created
-- in the ingest transaction that raises a session's score past the site's
-- threshold (or by a later batch or sweep when the click id or the settings
-- arrive after), then published to QStash and uploaded by sync-google-ads.
-- A click that started several sessions converts once.
CREATE TABLE conversions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    site_id           bigint NOT NULL REFERENCES sites (id),
    session_id        uuid NOT NULL,
    destination       text NOT NULL CHECK (destination IN ('google_ads', 'ga4')),
    click_id_type     text NOT NULL CHECK (click_id_type IN ('gclid', 'wbraid', 'gbraid')),
    click_id          text NOT NULL,
    visitor_id        uuid,
    value             numeric(12, 2) NOT NULL,
    currency          text NOT NULL,
    -- The time of the batch's latest interaction when the score crossed.
    converted_at      timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'published', 'uploaded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    last_error_code   text,
    last_error_message text,
    -- retry_later: not before this time.
    retry_after       timestamptz,
    qstash_message_id text,
    dry_run           boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    uploaded_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, click_id, destination)
);
-- The sweep and WT005: unfinished rows by age.
CREATE INDEX conversions_unfinished_idx ON conversions (created_at) WHERE status IN ('pending', 'published');
CREATE INDEX conversions_site_idx ON conversions (site_id, created_at);

-- +goose Down
DROP TABLE conversions;
ALTER TABLE sites DROP CONSTRAINT sites_google_ads_customer_id_digits;
ALTER TABLE sites DROP COLUMN ads_consent;
ALTER TABLE sites DROP COLUMN ga4_api_secret;
ALTER TABLE sites DROP COLUMN ga4_measurement_id;
