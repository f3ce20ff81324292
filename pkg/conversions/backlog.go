package conversions

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backlog is what WT005 judges: conversions that should have reached Google
// by now and have not, and failures that need an operator.
type Backlog struct {
	// Pending and Published count rows unfinished for longer than the limit
	// (by created_at) that are not waiting for a retry_after Google named.
	Pending   int64 `json:"pending"`
	Published int64 `json:"published"`
	// Waiting counts unfinished rows past the limit that wait for retry_after
	// (TOO_RECENT_*: Google asked for 6 hours): not stuck, shown for context.
	Waiting int64 `json:"waiting_for_retry"`
	// Oldest is when the oldest stuck row was created (nil: none).
	Oldest *time.Time `json:"oldest,omitempty"`
	// StuckCodes are the last error codes of the stuck rows that have one.
	StuckCodes map[string]int64 `json:"stuck_error_codes,omitempty"`
	// ConfigErrors counts failed rows whose error needs an operator
	// (last_error_class config_error), by code in ConfigErrorCodes.
	ConfigErrors     int64            `json:"config_errors"`
	ConfigErrorCodes map[string]int64 `json:"config_error_codes,omitempty"`
}

// Stuck is the number of unfinished rows past the limit.
func (b Backlog) Stuck() int64 { return b.Pending + b.Published }

// Failing reports whether WT005 should alarm.
func (b Backlog) Failing() bool { return b.Stuck() > 0 || b.ConfigErrors > 0 }

// backlogSQL reads both halves in one statement (conversions_unfinished_idx,
// conversions_config_error_idx). Codes come as parallel arrays, which every
// pgx exec mode reads alike.
const backlogSQL = `
WITH late AS (
    SELECT status, last_error_code, created_at, retry_after IS NOT NULL AND retry_after > @now::timestamptz AS waiting
    FROM conversions
    WHERE status IN ('pending', 'published') AND created_at <= @before::timestamptz
), stuck_codes AS (
    SELECT last_error_code AS code, count(*) AS n FROM late WHERE NOT waiting AND last_error_code IS NOT NULL GROUP BY 1
), config_codes AS (
    SELECT coalesce(last_error_code, 'UNKNOWN') AS code, count(*) AS n FROM conversions
    WHERE status = 'failed' AND last_error_class = 'config_error' GROUP BY 1
)
SELECT (SELECT count(*) FROM late WHERE NOT waiting AND status = 'pending'),
       (SELECT count(*) FROM late WHERE NOT waiting AND status = 'published'),
       (SELECT count(*) FROM late WHERE waiting),
       (SELECT min(created_at) FROM late WHERE NOT waiting),
       coalesce((SELECT array_agg(code ORDER BY n DESC, code) FROM stuck_codes), '{}'::text[]),
       coalesce((SELECT array_agg(n ORDER BY n DESC, code) FROM stuck_codes), '{}'::bigint[]),
       coalesce((SELECT array_agg(code ORDER BY n DESC, code) FROM config_codes), '{}'::text[]),
       coalesce((SELECT array_agg(n ORDER BY n DESC, code) FROM config_codes), '{}'::bigint[])`

// MeasureBacklog reads the backlog as of now: rows unfinished for longer than
// after, and every failure with a configuration error (until an operator
// fixes the settings and re-drives the rows, docs/google-ads.md).
func MeasureBacklog(ctx context.Context, db Querier, now time.Time, after time.Duration) (Backlog, error) {
	var b Backlog
	var stuckCodes, configCodes []string
	var stuckN, configN []int64
	err := db.QueryRow(ctx, backlogSQL, pgx.NamedArgs{"now": now, "before": now.Add(-after)}).Scan(
		&b.Pending, &b.Published, &b.Waiting, &b.Oldest, &stuckCodes, &stuckN, &configCodes, &configN)
	if err != nil {
		return Backlog{}, fmt.Errorf("measure the conversion backlog: %w", err)
	}
	b.StuckCodes = counts(stuckCodes, stuckN)
	b.ConfigErrorCodes = counts(configCodes, configN)
	for _, n := range configN {
		b.ConfigErrors += n
	}
	return b, nil
}

func counts(codes []string, n []int64) map[string]int64 {
	if len(codes) == 0 {
		return nil
	}
	m := make(map[string]int64, len(codes))
	for i, c := range codes {
		m[c] = n[i]
	}
	return m
}
