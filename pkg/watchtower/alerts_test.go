package watchtower_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

func wantTexts(t *testing.T, step string, got []string, prefixes ...string) {
	t.Helper()
	if len(got) != len(prefixes) {
		t.Fatalf("%s: sent %d messages %q, want %d", step, len(got), got, len(prefixes))
	}
	for i, p := range prefixes {
		if !strings.HasPrefix(got[i], p) {
			t.Errorf("%s: message %d is %q, want it to start with %q", step, i+1, got[i], p)
		}
	}
}

func TestAlertFiresOnceRepeatsAfterTheIntervalAndResolves(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	// An empty database: no traffic, no click ids; too few attempts to judge the error rate.
	r := f.run(t)
	wantTexts(t, "first run", f.texts(0),
		"🚨 [CRITICAL] WT001 TRAFFIC_LOSS\nNo non-bot sessions were active in the last 1h.\nactive_sessions: 0\nwindow: 1h\nFailing since 2026-11-20 12:00 UTC. Repeated every 6h",
		"🚨 [CRITICAL] WT002 GCLID_LOSS\n")
	for code, want := range map[string]watchtower.Alert{"WT000": watchtower.AlertNone, "WT001": watchtower.AlertFired, "WT002": watchtower.AlertFired, "WT003": watchtower.AlertNone} {
		if got := alertOf(r, code).Alert; got != want {
			t.Errorf("first run: %s alert %q, want %q", code, got, want)
		}
	}

	for _, later := range []time.Duration{time.Minute, 15 * time.Minute, 6*time.Hour - time.Second} {
		f.clock.Set(t0.Add(later))
		r := f.run(t)
		wantTexts(t, "after "+later.String(), f.texts(2))
		if got := alertOf(r, "WT001").Alert; got != watchtower.AlertNotDue {
			t.Errorf("after %s: WT001 alert %q, want not_due", later, got)
		}
	}

	f.clock.Set(t0.Add(6 * time.Hour))
	r = f.run(t)
	wantTexts(t, "after 6h", f.texts(2), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS", "🚨 [CRITICAL] WT002 GCLID_LOSS")
	if !strings.Contains(f.texts(2)[0], "Still failing after 6h (since 2026-11-20 12:00 UTC). Reminder 1;") {
		t.Errorf("repeat text: %q", f.texts(2)[0])
	}
	if got := alertOf(r, "WT002").Alert; got != watchtower.AlertRepeated {
		t.Errorf("after 6h: WT002 alert %q, want repeated", got)
	}

	// Traffic comes back at 7 h 30 m, with a click id.
	now := t0.Add(7*time.Hour + 30*time.Minute)
	f.clock.Set(now)
	insertSessions(t, f.pool, now, session{startedAgo: time.Minute, gclid: "Cj0KCQ"})
	r = f.run(t)
	wantTexts(t, "recovered", f.texts(4),
		"✅ [RESOLVED] WT001 TRAFFIC_LOSS\nPassing again after 7h 30m (failing since 2026-11-20 12:00 UTC).\n1 non-bot sessions were active",
		"✅ [RESOLVED] WT002 GCLID_LOSS\nPassing again after 7h 30m")
	if got := alertOf(r, "WT001").Alert; got != watchtower.AlertResolved {
		t.Errorf("recovered: WT001 alert %q, want resolved", got)
	}
	f.clock.Set(now.Add(time.Minute))
	f.run(t)
	wantTexts(t, "still passing", f.texts(6))

	// Two hours without traffic: a new incident, told once again from the start.
	f.clock.Set(now.Add(2 * time.Hour))
	f.run(t)
	wantTexts(t, "new incident", f.texts(6), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS")
	if !strings.Contains(f.texts(6)[0], "Failing since 2026-11-20 21:30 UTC.") {
		t.Errorf("new incident text: %q", f.texts(6)[0])
	}
}

func TestConcurrentRunsSendEachAlertOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A second watchtower with its own pool, like a second Lambda instance.
	other, err := pgxpool.New(context.Background(), f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	a, b := f.w, f.watchtower(t, other)

	// A reaches Telegram with WT001 and is held there, in its transaction.
	f.srv.Hold()
	type result struct {
		r   watchtower.Report
		err error
	}
	results := make(chan result, 2)
	go func() { r, err := a.Run(context.Background()); results <- result{r, err} }()
	<-f.srv.Arrivals()

	// B starts and must wait on A's row lock.
	go func() { r, err := b.Run(context.Background()); results <- result{r, err} }()
	waitForLockWaiter(t, f.pool)
	f.srv.Release()

	alerts := map[watchtower.Alert]int{}
	for range 2 {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		alerts[alertOf(res.r, "WT001").Alert]++
	}
	wantTexts(t, "two runs", f.texts(0), "🚨 [CRITICAL] WT001", "🚨 [CRITICAL] WT002")
	if alerts[watchtower.AlertFired] != 1 || alerts[watchtower.AlertNotDue] != 1 {
		t.Errorf("WT001 alerts of the two runs: %v, want one fired and one not_due", alerts)
	}
}

// waitForLockWaiter returns once a session of the test database waits on a
// lock; it watches PostgreSQL's own view rather than guessing a delay.
func waitForLockWaiter(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		err := pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a guess at timing
	}
	t.Fatal("the second run never waited on the first run's lock")
}

func TestTelegramDownLeavesTheStateForTheNextRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// WT001's send fails twice (the client's one retry included); WT002's goes through.
	f.srv.Script(telegramtest.ServerError(500), telegramtest.ServerError(502))
	r, err := f.w.Run(context.Background())
	var tg *telegram.Error
	if !errors.As(err, &tg) || tg.StatusCode != 502 {
		t.Fatalf("run error %v, want Telegram's 502", err)
	}
	if got := alertOf(r, "WT001").Alert; got != watchtower.AlertSendFailed {
		t.Errorf("WT001 alert %q, want send_failed", got)
	}
	var firing bool
	if err := f.pool.QueryRow(context.Background(), `SELECT firing FROM alert_state WHERE code = 'WT001'`).Scan(&firing); err != nil || firing {
		t.Fatalf("WT001 state firing=%v (%v): a failed send must not advance it", firing, err)
	}
	wantTexts(t, "Telegram down", f.texts(0), "🚨 [CRITICAL] WT002")

	f.clock.Set(t0.Add(15 * time.Minute))
	r = f.run(t)
	wantTexts(t, "next run", f.texts(1), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS")
	if alertOf(r, "WT001").Alert != watchtower.AlertFired || alertOf(r, "WT002").Alert != watchtower.AlertNotDue {
		t.Errorf("next run: %+v", r.Checks)
	}
}

func TestTelegramDownDuringResolveKeepsTheAlertFiring(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.run(t) // WT001 and WT002 fire
	now := t0.Add(time.Hour)
	f.clock.Set(now)
	insertSessions(t, f.pool, now, session{startedAgo: time.Minute, gclid: "Cj0KCQ"})
	f.srv.Script(telegramtest.ServerError(500), telegramtest.ServerError(500))
	r, err := f.w.Run(context.Background())
	if err == nil || alertOf(r, "WT001").Alert != watchtower.AlertSendFailed || alertOf(r, "WT002").Alert != watchtower.AlertResolved {
		t.Fatalf("run with Telegram failing once: %v, %+v", err, r.Checks)
	}
	f.clock.Set(now.Add(15 * time.Minute))
	f.run(t)
	wantTexts(t, "after the failed resolve", f.texts(2),
		"✅ [RESOLVED] WT002 GCLID_LOSS\nPassing again after 1h ",
		"✅ [RESOLVED] WT001 TRAFFIC_LOSS\nPassing again after 1h 15m ")
}

func TestDatabaseUnreachableIsSentWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A pool whose network can be cut.
	var down atomic.Bool
	cfg, err := pgxpool.ParseConfig(f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("connect: connection refused")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	f.w = f.watchtower(t, pool)

	down.Store(true)
	// Like every alert: once, not again before ALERT_REPEAT_EVERY (6 h), then again.
	alarm := "🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\nThe watchtower cannot query the database. The other checks did not run.\n"
	for i, step := range []struct {
		at    time.Duration
		alert watchtower.Alert
		texts []string
	}{
		{0, watchtower.AlertFired, []string{alarm}},
		{15 * time.Minute, watchtower.AlertNotDue, nil},
		{6*time.Hour - time.Second, watchtower.AlertNotDue, nil},
		{6 * time.Hour, watchtower.AlertRepeated, []string{alarm}},
	} {
		f.clock.Set(t0.Add(step.at))
		before := len(f.srv.Messages())
		r := f.run(t)
		if r.Database != "unreachable" || alertOf(r, "WT001").Outcome != "skipped" || alertOf(r, "WT000").Alert != step.alert {
			t.Errorf("run %d: database %q, WT001 %q, WT000 %q (want %q)", i+1, r.Database, alertOf(r, "WT001").Outcome, alertOf(r, "WT000").Alert, step.alert)
		}
		wantTexts(t, fmt.Sprintf("database down, run %d", i+1), f.texts(before), step.texts...)
		if len(step.texts) > 0 && !strings.Contains(f.texts(before)[0], "connection refused") {
			t.Errorf("the alarm should carry the error: %q", f.texts(before)[0])
		}
	}

	down.Store(false)
	f.clock.Set(t0.Add(6*time.Hour + 45*time.Minute))
	f.run(t)
	// The checks run first: WT000 is resolved once none of them failed to query.
	wantTexts(t, "database back", f.texts(2),
		"🚨 [CRITICAL] WT001", "🚨 [CRITICAL] WT002",
		"✅ [RESOLVED] WT000 DATABASE_UNREACHABLE\nThe database answers again, after 6h 45m (failing since 2026-11-20 12:00 UTC).")
}

func TestAFailingCheckQueryRaisesWT000(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	broken := watchtower.Check{Code: "WT099", Name: "BROKEN", Level: telegram.Warning,
		Measure: func(ctx context.Context, db watchtower.Querier, now time.Time) (watchtower.Outcome, error) {
			var n int
			return watchtower.Outcome{}, db.QueryRow(ctx, `SELECT count(*) FROM no_such_table`).Scan(&n)
		}}
	always := watchtower.Check{Code: "WT098", Name: "ALWAYS", Level: telegram.Warning,
		Measure: func(context.Context, watchtower.Querier, time.Time) (watchtower.Outcome, error) {
			return watchtower.Outcome{Failing: true, Summary: "Always <failing> & loud.", Figures: map[string]any{"n": 1}}, nil
		}}
	f.w = watchtower.New(f.pool, client(t, f.srv), defaults(t), watchtower.Options{Now: f.clock.Now, Checks: []watchtower.Check{broken, always}})
	r := f.run(t)
	if alertOf(r, "WT099").Outcome != "error" || alertOf(r, "WT000").Outcome != "fail" {
		t.Errorf("report %+v", r.Checks)
	}
	wantTexts(t, "broken check", f.texts(0),
		"⚠️ [WARNING] WT098 ALWAYS\nAlways <failing> & loud.\nn: 1\n",
		"🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\nThe watchtower cannot query the database. The checks above could not be judged.\nWT099 BROKEN: ")
}

func TestJobLogsOneJSONLineWithEveryCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	insertCounters(t, f.pool, t0, counters{ago: time.Minute, requests: 40, server: 4})
	f.srv.Script(telegramtest.ServerError(500), telegramtest.ServerError(500))
	if err := f.w.Job(context.Background()); err == nil {
		t.Fatal("job should report the failed send")
	}
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), f.logs)
	}
	var line struct {
		Level    string                   `json:"level"`
		Msg      string                   `json:"msg"`
		Database string                   `json:"database"`
		Checks   []watchtower.CheckReport `json:"checks"`
		Err      string                   `json:"err"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.Msg != "watchtower run" || line.Level != "ERROR" || line.Database != "ok" || len(line.Checks) != len(watchtower.Checks(defaults(t)))+1 {
		t.Fatalf("log line %s", lines[0])
	}
	wt003 := line.Checks[3]
	if wt003.Code != "WT003" || wt003.Outcome != "fail" || wt003.Figures["error_rate_percent"] != 10.0 || wt003.Figures["attempts"] != 40.0 {
		t.Errorf("WT003 in the log: %+v", wt003)
	}
	if line.Checks[1].Alert != watchtower.AlertSendFailed || !strings.Contains(line.Err, "Internal Server Error") {
		t.Errorf("WT001 in the log: %+v, err %q", line.Checks[1], line.Err)
	}
	if strings.Contains(f.logs.String(), f.srv.Token) {
		t.Error("the bot token is in the log")
	}
}

func TestReportIsQuietWhenAllIsWell(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	insertSessions(t, f.pool, t0, session{startedAgo: time.Minute, gclid: "Cj0KCQ"})
	insertCounters(t, f.pool, t0, counters{ago: time.Minute, requests: 100})
	var logs bytes.Buffer
	f.w = watchtower.New(f.pool, client(t, f.srv), defaults(t), watchtower.Options{Now: f.clock.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := f.w.Job(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.srv.Messages()) != 0 || !strings.Contains(logs.String(), `"level":"INFO"`) {
		t.Errorf("messages %v, log %s", f.texts(0), logs.String())
	}
}

func TestFromConfigNeedsATelegramToken(t *testing.T) {
	t.Parallel()
	cfg := config.Watchtower{Database: config.Database{URL: dbtest.URL("postgres")}, Alerting: defaults(t)}
	cfg.Telegram.APIURL = "https://api.telegram.org"
	if _, err := watchtower.FromConfig(context.Background(), &cfg); err == nil || !strings.Contains(err.Error(), "TELEGRAM_BOT_TOKEN") {
		t.Error("FromConfig without a token succeeded")
	}
}
