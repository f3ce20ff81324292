package watchtower

import (
	"context"
	"fmt"
	"time"
)

// countersRetention is how long the ingest counters are kept: the error
// rate reads the last hour; a month is for an operator looking back.
const countersRetention = 30 * 24 * time.Hour

// retentionBatch bounds the rows one run deletes from each table, so that a
// backlog (a first run on an old database) is worked off over several runs
// instead of one long statement. At 16 shards a minute, a day of counters is
// 23,040 rows; 96 runs a day delete up to 960,000.
const retentionBatch = 10000

// Both tables are keyed (bucket, …): ORDER BY bucket makes the inner SELECT
// read the oldest buckets through the primary key and stop at the batch,
// and find nothing at once when nothing is old (without it the planner may
// pick a sequential scan, which reads the whole table to find nothing).
const (
	deleteOldCounters = `
DELETE FROM ingest_counters WHERE ctid IN (
    SELECT ctid FROM ingest_counters WHERE bucket < $1::timestamptz ORDER BY bucket LIMIT $2)`
	deleteOldClientFailures = `
DELETE FROM ingest_client_failures WHERE ctid IN (
    SELECT ctid FROM ingest_client_failures WHERE bucket < $1::timestamptz ORDER BY bucket LIMIT $2)`
)

// retain deletes ingest counters older than countersRetention, at most
// retentionBatch rows per table, and returns how many it deleted.
func (w *Watchtower) retain(ctx context.Context, now time.Time) (map[string]int64, error) {
	deleted := map[string]int64{}
	for _, t := range []struct{ table, sql string }{
		{"ingest_counters", deleteOldCounters},
		{"ingest_client_failures", deleteOldClientFailures},
	} {
		tag, err := w.db.Exec(ctx, t.sql, now.Add(-countersRetention), retentionBatch)
		if err != nil {
			return deleted, fmt.Errorf("retention of %s: %w", t.table, err)
		}
		deleted[t.table] = tag.RowsAffected()
	}
	return deleted, nil
}
