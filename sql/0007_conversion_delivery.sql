-- +goose Up
-- What sync-google-ads needs beside the outbox of 0006.
--
-- A delivery claims its row before it uploads: claim_id names the delivery
-- that holds it, until claimed_until. A second delivery of the same message
-- (QStash delivers at least once) finds the row claimed and is told to come
-- back later, so that two deliveries at once upload once. A worker that dies
-- holding a claim (a Lambda timeout) loses it when claimed_until passes.
ALTER TABLE conversions ADD COLUMN claim_id uuid;
ALTER TABLE conversions ADD COLUMN claimed_until timestamptz;
-- The class of the last error (pkg/googleads's outcome kinds): WT005 alarms
-- on config_error failures, which need an operator rather than a retry.
ALTER TABLE conversions ADD COLUMN last_error_class text
    CHECK (last_error_class IN ('retry_later', 'permanent', 'config_error'));
-- WT005: failures that need an operator.
CREATE INDEX conversions_config_error_idx ON conversions (updated_at)
    WHERE status = 'failed' AND last_error_class = 'config_error';

-- +goose Down
DROP INDEX conversions_config_error_idx;
ALTER TABLE conversions DROP COLUMN last_error_class;
ALTER TABLE conversions DROP COLUMN claimed_until;
ALTER TABLE conversions DROP COLUMN claim_id;
