package watchtower_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// inTx runs fn in a transaction that is rolled back, so that the cases of
// one test share a database without seeing each other's rows.
func inTx(t *testing.T, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, fn func(tx pgx.Tx)) {
	t.Helper()
	tx, err := db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	fn(tx)
}

func measure(t *testing.T, c watchtower.Check, db watchtower.Querier) watchtower.Outcome {
	t.Helper()
	out, err := c.Measure(context.Background(), db, t0)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTrafficLossFailsWithoutANonBotSessionStartedInTheLastHour(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	check := watchtower.Checks(defaults(t))[0]
	if check.Code != "WT001" || check.Name != "TRAFFIC_LOSS" {
		t.Fatalf("first check is %s %s", check.Code, check.Name)
	}
	cases := []struct {
		name     string
		sessions []session
		failing  bool
		started  int64
	}{
		{"no sessions", nil, true, 0},
		{"started just inside the hour", []session{{startedAgo: time.Hour - time.Second}}, false, 1},
		{"started exactly an hour ago", []session{{startedAgo: time.Hour}}, false, 1},
		{"started just outside the hour", []session{{startedAgo: time.Hour + time.Second}}, true, 0},
		// Seen a second ago, but started earlier: a visit that is still
		// going does not count (sessions_live_started_idx; see checks.go).
		{"started 3 h ago, seen now", []session{{startedAgo: 3 * time.Hour, seenAgo: time.Second}}, true, 0},
		{"only bots", []session{{startedAgo: time.Minute, bot: true}, {bot: true}}, true, 0},
		{"a human among bots", []session{{startedAgo: time.Minute, bot: true}, {startedAgo: 30 * time.Minute}, {startedAgo: 2 * time.Minute}}, false, 2},
	}
	for _, tc := range cases {
		inTx(t, pool, func(tx pgx.Tx) {
			insertSessions(t, tx, t0, tc.sessions...)
			out := measure(t, check, tx)
			if out.Failing != tc.failing || out.Figures["started_sessions"] != tc.started || out.Figures["window"] != "1h" {
				t.Errorf("%s: failing %v, figures %v; want failing %v with %d started", tc.name, out.Failing, out.Figures, tc.failing, tc.started)
			}
		})
	}
}

// The counts are bounded: a busy hour is counted up to 10,000 and said so.
func TestTrafficCountsStopAtTheirCap(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	site := addSite(t, pool, "busy", "Busy", "UTC")
	insertSiteSessions(t, pool, site, siteSessions{at: t0.Add(-time.Minute), n: 10001})
	out := measure(t, watchtower.Checks(defaults(t))[0], pool)
	if out.Failing || out.Figures["started_sessions"] != int64(10000) || !strings.HasPrefix(out.Summary, "At least 10000 non-bot sessions started") {
		t.Errorf("10,001 sessions: %v %q", out.Figures, out.Summary)
	}
}

func TestClickIDLossFailsWithoutAClickIDSessionInThreeHours(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	check := watchtower.Checks(defaults(t))[1]
	if check.Code != "WT002" || check.Name != "GCLID_LOSS" {
		t.Fatalf("second check is %s %s", check.Code, check.Name)
	}
	cases := []struct {
		name     string
		sessions []session
		failing  bool
	}{
		{"no sessions", nil, true},
		{"gclid started just inside 3 h", []session{{startedAgo: 3*time.Hour - time.Second, gclid: "Cj0KCQ"}}, false},
		{"gclid started just outside 3 h", []session{{startedAgo: 3*time.Hour + time.Second, gclid: "Cj0KCQ"}}, true},
		{"wbraid counts as a click id", []session{{startedAgo: time.Hour, wbraid: "wb1"}}, false},
		{"sessions without a click id", []session{{startedAgo: time.Minute}, {startedAgo: 2 * time.Hour}}, true},
		{"a bot with a gclid", []session{{startedAgo: time.Minute, gclid: "Cj0KCQ", bot: true}}, true},
	}
	for _, tc := range cases {
		inTx(t, pool, func(tx pgx.Tx) {
			insertSessions(t, tx, t0, tc.sessions...)
			if out := measure(t, check, tx); out.Failing != tc.failing {
				t.Errorf("%s: failing %v, figures %v; want failing %v", tc.name, out.Failing, out.Figures, tc.failing)
			}
		})
	}
}

func TestIngestErrorRateFiresAboveFivePercentWithEnoughAttempts(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	check := watchtower.Checks(defaults(t))[2]
	if check.Code != "WT003" || check.Name != "INGEST_ERROR_RATE" {
		t.Fatalf("third check is %s %s", check.Code, check.Name)
	}
	cases := []struct {
		name     string
		rows     []counters
		clients  []clientFailures
		failing  bool
		attempts int64
		rate     float64
	}{
		{"no traffic", nil, nil, false, 0, 0},
		{"below the minimum sample, all failing", []counters{{ago: time.Minute, requests: 10, server: 10}},
			[]clientFailures{{time.Minute, "a", 9}, {time.Minute, "b", 9}}, false, 19, 100},
		{"exactly the minimum sample, 10 %", []counters{{ago: time.Minute, requests: 20, server: 2}}, nil, true, 20, 10},
		{"exactly 5 % does not fire", []counters{
			{ago: time.Minute, shard: 0, requests: 50, server: 2},
			{ago: time.Minute, shard: 3, requests: 47},
		}, []clientFailures{{time.Minute, "a", 2}, {30 * time.Minute, "b", 1}, {30 * time.Minute, "c", 2}}, false, 100, 5},
		{"just above 5 % fires", []counters{
			{ago: time.Minute, shard: 0, requests: 50, server: 3},
			{ago: time.Minute, shard: 3, requests: 47},
		}, []clientFailures{{time.Minute, "a", 2}, {59 * time.Minute, "b", 1}, {2 * time.Minute, "c", 1}, {3 * time.Minute, "c", 1}}, true, 100, 6},
		{"failures older than the window do not count", []counters{
			{ago: 61 * time.Minute, requests: 100, server: 100},
			{ago: 5 * time.Minute, requests: 100},
		}, []clientFailures{{61 * time.Minute, "a", 50}, {61 * time.Minute, "b", 50}}, false, 100, 0},
	}
	for _, tc := range cases {
		inTx(t, pool, func(tx pgx.Tx) {
			insertCounters(t, tx, t0, tc.rows...)
			insertClientFailures(t, tx, t0, tc.clients...)
			out := measure(t, check, tx)
			if out.Failing != tc.failing || out.Figures["attempts"] != tc.attempts || out.Figures["error_rate_percent"] != tc.rate {
				t.Errorf("%s: failing %v, figures %v; want failing %v, %d attempts, %v %%", tc.name, out.Failing, out.Figures, tc.failing, tc.attempts, tc.rate)
			}
		})
	}
}

func TestThresholdsAreConfiguration(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	strict := watchtower.IngestErrorRate(time.Hour, 1, 5)
	inTx(t, pool, func(tx pgx.Tx) {
		insertCounters(t, tx, t0, counters{ago: time.Minute, requests: 10, server: 1})
		if out := measure(t, strict, tx); !out.Failing {
			t.Errorf("10 %% with a 1 %% threshold and sample 5: %v", out.Figures)
		}
	})
	short := watchtower.TrafficLoss(10*time.Minute, 5)
	inTx(t, pool, func(tx pgx.Tx) {
		insertSessions(t, tx, t0, session{startedAgo: 11 * time.Minute})
		if out := measure(t, short, tx); !out.Failing || out.Figures["window"] != "10m" {
			t.Errorf("seen 11 min ago with a 10 min window: %v", out.Figures)
		}
	})
}
