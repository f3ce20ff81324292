package watchtower_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// TestQueriesUseTheirIndexes EXPLAINs every query of a run over a database
// with six weeks of sessions and five days of counters (analyzed), and
// requires the index each query is written for and no sequential scan of a
// big table: the work of a run grows with the sites and the window, not
// with the history.
func TestQueriesUseTheirIndexes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// 500 sites, inserted without the time-zone trigger (it reads
	// pg_timezone_names, some 70 ms a row); the zones are valid ones.
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SET LOCAL session_replication_role = replica`,
		`INSERT INTO sites (public_id, name, timezone)
		 SELECT 'site' || i, 'Site ' || i, CASE WHEN i % 2 = 0 THEN 'Europe/Berlin' ELSE 'UTC' END FROM generate_series(1, 500) i`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		// 40,000 sessions over about six weeks (one every 90 s), a tenth
		// with a gclid, some bots.
		`INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, gclid, is_bot, traffic_source, device_type)
		 SELECT (SELECT min(id) FROM sites) + i % 500, gen_random_uuid(), t, t, t,
		        CASE WHEN i % 10 = 0 THEN 'g' || i END, i % 17 = 0, CASE WHEN i % 10 = 0 THEN 'google_ads' ELSE 'direct' END, 'desktop'
		 FROM generate_series(1, 40000) i, LATERAL (SELECT $1::timestamptz - i * interval '90 seconds' AS t) x`,
		`INSERT INTO ingest_counters (bucket, shard, requests, server_failures)
		 SELECT $1::timestamptz - i * interval '1 minute', s, 5, i % 2 FROM generate_series(0, 60 * 24 * 5) i, generate_series(0, 15) s`,
		`INSERT INTO ingest_client_failures (bucket, client, failures)
		 SELECT $1::timestamptz - i * interval '1 minute', 'c' || (i % 97), 1 FROM generate_series(0, 60 * 24 * 5) i`,
		`ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{t0}
		}
		if _, err := f.pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := map[string][]string{
		"WT001 installation":                  {"sessions_live_started_idx"},
		"WT002 installation":                  {"sessions_click_started_idx"},
		"WT001 per site":                      {"sessions_site_started_idx"},
		"WT002 per site":                      {"sessions_site_click_started_idx", "sessions_site_started_idx"},
		"WT003":                               {"ingest_counters_pkey", "ingest_client_failures_pkey"},
		"retention of ingest_counters":        {"ingest_counters_pkey"},
		"retention of ingest_client_failures": {"ingest_client_failures_pkey"},
	}
	seqScan := regexp.MustCompile(`Seq Scan on (sessions|ingest_counters|ingest_client_failures)\b`)
	for _, q := range watchtower.PlanQueries(t0, f.cfg) {
		rows, err := f.pool.Query(ctx, "EXPLAIN "+q.SQL, q.Args...)
		if err != nil {
			t.Fatalf("%s: %v", q.Name, err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q.Name, err)
		}
		wanted, ok := want[q.Name]
		if !ok {
			t.Errorf("%s: no expected index in this test", q.Name)
		}
		for _, idx := range wanted {
			if !strings.Contains(plan.String(), " "+idx+" ") && !strings.Contains(plan.String(), " "+idx+"\n") {
				t.Errorf("%s does not use %s:\n%s", q.Name, idx, plan.String())
			}
		}
		if m := seqScan.FindString(plan.String()); m != "" {
			t.Errorf("%s has a %s:\n%s", q.Name, m, plan.String())
		}
	}
}
