package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A run is inserted when it starts (status running, so that an overlapping
// run can be seen) and updated when it ends.

const insertRunSQL = `
INSERT INTO audit_runs (trigger, site_id, window_start, window_end, threshold_percent, started_at)
VALUES ($1::text, nullif($2::bigint, 0), $3::timestamptz, $4::timestamptz, $5::float8, $6::timestamptz)
RETURNING id`

const finishRunSQL = `
UPDATE audit_runs
SET finished_at = started_at + $2::bigint * interval '1 microsecond',
    duration_ms = $3::bigint, status = $4::text, error = $5::text
WHERE id = $1::bigint`

const insertFindingSQL = `
INSERT INTO audit_findings (run_id, code, name, site_id, count, denominator, ratio_percent, alarm, sample_ids)
VALUES ($1::bigint, $2::text, $3::text, $4::bigint, $5::bigint, $6::bigint, $7::float8, $8::boolean, $9::text[])`

type storedFinding struct {
	check   Check
	siteID  int64
	finding Finding
}

func startRun(ctx context.Context, db *pgxpool.Pool, r Report, siteID int64, now time.Time) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, insertRunSQL, r.Trigger, siteID, r.Window.From, r.Window.To, r.ThresholdPercent, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit: record the run: %w", err)
	}
	return id, nil
}

// finishRun records the end. finished_at is the (injected) start plus the
// measured duration, so that both stay on the run's own clock.
func finishRun(ctx context.Context, db *pgxpool.Pool, id int64, status string, runErr error, took time.Duration) error {
	var msg *string
	if runErr != nil {
		s := runErr.Error()
		msg = &s
	}
	// A cancelled run (Lambda's deadline) still records how it ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := db.Exec(ctx, finishRunSQL, id, took.Microseconds(), took.Milliseconds(), status, msg); err != nil {
		return fmt.Errorf("audit: record the end of run %d: %w", id, err)
	}
	return nil
}

// storeFindings writes a run's findings in one transaction.
func storeFindings(ctx context.Context, db *pgxpool.Pool, runID int64, findings []storedFinding) error {
	if len(findings) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, f := range findings {
			samples := f.finding.Samples
			if samples == nil {
				samples = []string{}
			}
			b.Queue(insertFindingSQL, runID, f.check.Code, f.check.Name, f.siteID, f.finding.Count,
				f.finding.Denominator, f.finding.RatioPercent, f.finding.Alarm, samples)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("audit: store %d findings of run %d: %w", len(findings), runID, err)
	}
	return nil
}
