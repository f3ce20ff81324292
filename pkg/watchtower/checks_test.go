package watchtower_test

import (
	"context"
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

func measure(t *testing.T, c watchtower.Check, tx pgx.Tx) watchtower.Outcome {
	t.Helper()
	out, err := c.Measure(context.Background(), tx, t0)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTrafficLossFailsWithoutANonBotSessionInTheLastHour(t *testing.T) {
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
		active   int64
	}{
		{"no sessions", nil, true, 0},
		{"seen just inside the hour", []session{{startedAgo: 3 * time.Hour, seenAgo: time.Hour - time.Second}}, false, 1},
		{"seen just outside the hour", []session{{startedAgo: 3 * time.Hour, seenAgo: time.Hour + time.Second}}, true, 0},
		{"only bots", []session{{seenAgo: time.Minute, bot: true}, {seenAgo: 0, bot: true}}, true, 0},
		{"a human among bots", []session{{seenAgo: time.Minute, bot: true}, {seenAgo: 30 * time.Minute}}, false, 1},
	}
	for _, tc := range cases {
		inTx(t, pool, func(tx pgx.Tx) {
			insertSessions(t, tx, t0, tc.sessions...)
			out := measure(t, check, tx)
			if out.Failing != tc.failing || out.Figures["active_sessions"] != tc.active || out.Figures["window"] != "1h" {
				t.Errorf("%s: failing %v, figures %v; want failing %v with %d active", tc.name, out.Failing, out.Figures, tc.failing, tc.active)
			}
		})
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
		failing  bool
		attempts int64
		rate     float64
	}{
		{"no traffic", nil, false, 0, 0},
		{"below the minimum sample, all failing", []counters{{ago: time.Minute, requests: 10, server: 10, client: 9}}, false, 19, 100},
		{"exactly the minimum sample, 10 %", []counters{{ago: time.Minute, requests: 20, server: 2}}, true, 20, 10},
		{"exactly 5 % does not fire", []counters{
			{ago: time.Minute, shard: 0, requests: 50, server: 2},
			{ago: time.Minute, shard: 3, requests: 47, client: 2},
			{ago: 30 * time.Minute, shard: 1, client: 1},
		}, false, 100, 5},
		{"just above 5 % fires", []counters{
			{ago: time.Minute, shard: 0, requests: 50, server: 3},
			{ago: time.Minute, shard: 3, requests: 47, client: 2},
			{ago: 59 * time.Minute, shard: 1, client: 1},
		}, true, 100, 6},
		{"failures older than the window do not count", []counters{
			{ago: 61 * time.Minute, requests: 100, server: 100},
			{ago: 5 * time.Minute, requests: 100},
		}, false, 100, 0},
	}
	for _, tc := range cases {
		inTx(t, pool, func(tx pgx.Tx) {
			insertCounters(t, tx, t0, tc.rows...)
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
	short := watchtower.TrafficLoss(10 * time.Minute)
	inTx(t, pool, func(tx pgx.Tx) {
		insertSessions(t, tx, t0, session{seenAgo: 11 * time.Minute})
		if out := measure(t, short, tx); !out.Failing || out.Figures["window"] != "10m" {
			t.Errorf("seen 11 min ago with a 10 min window: %v", out.Figures)
		}
	})
}
