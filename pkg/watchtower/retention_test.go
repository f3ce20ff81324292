package watchtower_test

import (
	"context"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// Counters older than 30 days go, 10,000 rows per table per run; the 30th
// day itself stays.
func TestRunsDeleteCountersOlderThan30DaysInBoundedBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.watchtower(t, f.pool, []watchtower.Check{}...)
	ctx := context.Background()
	month := 30 * 24 * time.Hour
	// 10,001 old counter rows (625 minutes × 16 shards + 1), from 30 days
	// and a minute back; 10,001 old client rows.
	for _, q := range []string{
		`INSERT INTO ingest_counters (bucket, shard, requests)
		 SELECT $1::timestamptz - interval '1 minute' - m * interval '1 minute', s, 1 FROM generate_series(0, 624) m, generate_series(0, 15) s`,
		`INSERT INTO ingest_counters (bucket, shard, requests) VALUES ($1::timestamptz - interval '3 days', 0, 1)`,
		`INSERT INTO ingest_client_failures (bucket, client, failures)
		 SELECT $1::timestamptz - interval '1 minute' - m * interval '1 minute', 'c', 1 FROM generate_series(0, 10000) m`,
		// Exactly 30 days old, and younger: kept.
		`INSERT INTO ingest_counters (bucket, shard, requests) VALUES ($1::timestamptz, 0, 1), ($1::timestamptz + interval '1 minute', 0, 1)`,
		`INSERT INTO ingest_client_failures (bucket, client, failures) VALUES ($1::timestamptz, 'c', 1), ($1::timestamptz, 'd', 1)`,
	} {
		if _, err := f.pool.Exec(ctx, q, t0.Add(-month)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	count := func(table string) (n int64) {
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for i, want := range []map[string]int64{
		{"ingest_counters": 10000, "ingest_client_failures": 10000},
		{"ingest_counters": 1, "ingest_client_failures": 1},
		{"ingest_counters": 0, "ingest_client_failures": 0},
	} {
		r := f.run(t)
		for table, n := range want {
			if r.Retention[table] != n {
				t.Errorf("run %d deleted %d rows of %s, want %d", i+1, r.Retention[table], table, n)
			}
		}
	}
	if n := count("ingest_counters"); n != 2 {
		t.Errorf("%d counter rows left, want the 2 of the last 30 days", n)
	}
	if n := count("ingest_client_failures"); n != 2 {
		t.Errorf("%d client rows left, want the 2 of the last 30 days", n)
	}
}
