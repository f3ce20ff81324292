package watchtower_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// lambda is a deployment where every run is a fresh process (as Lambda may
// do): a new pool and a new Watchtower per run, nothing kept in memory, and
// a network to the database that the test can cut.
type lambda struct {
	f      *fixture
	down   atomic.Bool
	checks []watchtower.Check
}

func newLambda(t *testing.T, checks ...watchtower.Check) *lambda {
	f := newFixture(t)
	f.cfg.Interval = 15 * time.Minute // the real schedule
	return &lambda{f: f, checks: append([]watchtower.Check{}, checks...)}
}

// cuttablePool is a pool on the test database whose network is cut while
// l.down is set.
func (l *lambda) cuttablePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(l.f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if l.down.Load() {
			return nil, errors.New("dial tcp: connect: connection refused")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// run is one invocation in a fresh process at the given time.
func (l *lambda) run(t *testing.T, at time.Time) (watchtower.Report, []string) {
	t.Helper()
	pool := l.cuttablePool(t)
	defer pool.Close()
	l.f.clock.Set(at)
	before := len(l.f.srv.Messages())
	w := watchtower.New(pool, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks})
	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatalf("run at %s: %v", at.Format("15:04"), err)
	}
	return r, l.f.texts(before)
}

func TestWT000WithAFreshProcessPerRun(t *testing.T) {
	t.Parallel()
	l := newLambda(t)
	steps := []struct {
		at    time.Duration
		down  bool
		alert watchtower.Alert
		texts []string
	}{
		{0, false, watchtower.AlertNone, nil},                // 12:00 reaches the database: recorded
		{15 * time.Minute, false, watchtower.AlertNone, nil}, // 12:15 too
		{30 * time.Minute, true, watchtower.AlertFired, []string{ // 12:30 down: alarm
			"🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\nThe watchtower cannot query the database. The other checks did not run.\n"}},
		// A fresh process knows nothing of the earlier alarm: it sends again.
		{45 * time.Minute, true, watchtower.AlertFired, []string{"🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\n"}},
		{time.Hour, true, watchtower.AlertFired, []string{"🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\n"}},
		// 13:15: back, 1 h after the last good run (more than two intervals).
		{time.Hour + 15*time.Minute, false, watchtower.AlertResolved, []string{
			"✅ [RESOLVED] WT000 DATABASE_UNREACHABLE\nThe database answers again. No watchtower run reached it from 2026-11-20 12:15 UTC (the last that did) until 2026-11-20 13:15 UTC: an outage of at most 1h, or a time the watchtower did not run."}},
		{time.Hour + 30*time.Minute, false, watchtower.AlertNone, nil},
	}
	for i, s := range steps {
		l.down.Store(s.down)
		r, texts := l.run(t, t0.Add(s.at))
		wantTexts(t, fmt.Sprintf("run %d", i+1), texts, s.texts...)
		if got := alertOf(r, "WT000").Alert; got != s.alert {
			t.Errorf("run %d: WT000 alert %q, want %q", i+1, got, s.alert)
		}
	}
}

// "More than two intervals", at its edge: a gap of exactly 30 min (one run
// missed) is no outage to resolve; a second more is.
func TestWT000GapEdge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		gap      time.Duration
		resolved bool
	}{
		{30 * time.Minute, false},
		{30*time.Minute + time.Second, true},
	} {
		t.Run(tc.gap.String(), func(t *testing.T) {
			t.Parallel()
			l := newLambda(t)
			l.run(t, t0)
			r, texts := l.run(t, t0.Add(tc.gap))
			if got := alertOf(r, "WT000").Alert == watchtower.AlertResolved; got != tc.resolved || len(texts) != map[bool]int{false: 0, true: 1}[tc.resolved] {
				t.Errorf("after a gap of %s: WT000 %q, messages %q; want resolved %v", tc.gap, alertOf(r, "WT000").Alert, texts, tc.resolved)
			}
		})
	}
}

// Telegram failing at the RESOLVED leaves the last good time as it was: the
// next run resolves, with the whole span.
func TestWT000ResolvedIsRetriedWhenTelegramFails(t *testing.T) {
	t.Parallel()
	l := newLambda(t)
	l.run(t, t0)
	l.f.srv.Script(telegramtest.ServerError(502), telegramtest.ServerError(502))
	l.f.clock.Set(t0.Add(time.Hour))
	w := watchtower.New(l.f.pool, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks})
	r, err := w.Run(context.Background())
	var tg *telegram.Error
	if !errors.As(err, &tg) || alertOf(r, "WT000").Alert != watchtower.AlertSendFailed {
		t.Fatalf("run with Telegram down: %v, %+v", err, alertOf(r, "WT000"))
	}
	r, texts := l.run(t, t0.Add(time.Hour+15*time.Minute))
	wantTexts(t, "retry", texts, "✅ [RESOLVED] WT000 DATABASE_UNREACHABLE\nThe database answers again. No watchtower run reached it from 2026-11-20 12:00 UTC (the last that did) until 2026-11-20 13:15 UTC: an outage of at most 1h 15m, or a time the watchtower did not run.")
	if alertOf(r, "WT000").Alert != watchtower.AlertResolved {
		t.Errorf("retry: %+v", alertOf(r, "WT000"))
	}
}

// Two fresh processes reaching the database after a gap send one RESOLVED.
func TestConcurrentRunsAfterAnOutageResolveWT000Once(t *testing.T) {
	t.Parallel()
	l := newLambda(t)
	l.run(t, t0)
	l.f.clock.Set(t0.Add(2 * time.Hour))
	other, err := pgxpool.New(context.Background(), l.f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	a := watchtower.New(l.f.pool, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks})
	b := watchtower.New(other, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks})
	l.f.srv.Hold()
	results := make(chan watchtower.Alert, 2)
	errs := make(chan error, 2)
	for _, w := range []*watchtower.Watchtower{a, b} {
		go func() {
			r, err := w.Run(context.Background())
			errs <- err
			results <- alertOf(r, "WT000").Alert
		}()
		if w == a {
			<-l.f.srv.Arrivals()
		}
	}
	waitForLockWaiter(t, l.f.pool)
	l.f.srv.Release()
	got := map[watchtower.Alert]int{}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		got[<-results]++
	}
	if got[watchtower.AlertResolved] != 1 || got[watchtower.AlertNone] != 1 || len(l.f.srv.Messages()) != 1 {
		t.Errorf("WT000 alerts %v, %d messages; want one RESOLVED", got, len(l.f.srv.Messages()))
	}
}

// A check query that fails while the database answers is WT009 through
// alert_state — a missing column, a timeout, a scan into the wrong type —
// never WT000; it resolves when the check runs again, and the run counts as
// one that reached the database.
func TestAFailingCheckQueryIsWT009(t *testing.T) {
	t.Parallel()
	var broken atomic.Value
	broken.Store("missing column")
	check := watchtower.Check{Code: "WT098", Name: "FLAKY", Level: telegram.Warning,
		Measure: func(ctx context.Context, db watchtower.Querier, now time.Time) (watchtower.Outcome, error) {
			var err error
			switch broken.Load() {
			case "missing column":
				var n int64
				err = db.QueryRow(ctx, `SELECT count(no_such_column) FROM sessions`).Scan(&n)
			case "timeout":
				var s string
				err = db.QueryRow(ctx, `SELECT pg_sleep(30)::text`).Scan(&s)
			case "scan":
				var n int64
				err = db.QueryRow(ctx, `SELECT 'many'`).Scan(&n)
			}
			return watchtower.Outcome{Summary: "Fine."}, err
		}}
	l := newLambda(t, check)
	l.f.cfg.Interval = 24 * time.Hour

	r, texts := l.run(t, t0)
	wantTexts(t, "missing column", texts, "🚨 [CRITICAL] WT009 CHECK_FAILED\n1 check could not be judged (WT098 FLAKY): the database answers, but the query failed.")
	if !strings.Contains(texts[0], `WT098 FLAKY: ERROR: column "no_such_column" does not exist (SQLSTATE 42703)`) || alertOf(r, "WT000").Outcome != "pass" {
		t.Errorf("missing column: %s\n%+v", texts[0], r.Checks)
	}

	// A timeout, then a scan error: still failing, not due again, no WT000.
	broken.Store("timeout")
	l.f.clock.Set(t0.Add(time.Minute))
	w := watchtower.New(l.f.pool, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks, CheckTimeout: 200 * time.Millisecond})
	r, err := w.Run(context.Background())
	if err != nil || alertOf(r, "WT009").Alert != watchtower.AlertNotDue || alertOf(r, "WT000").Outcome != "pass" ||
		!strings.Contains(alertOf(r, "WT098").Error, "timeout") {
		t.Errorf("timeout: %v %+v", err, r.Checks)
	}
	broken.Store("scan")
	r, texts = l.run(t, t0.Add(2*time.Minute))
	if len(texts) != 0 || alertOf(r, "WT009").Alert != watchtower.AlertNotDue || alertOf(r, "WT000").Outcome != "pass" {
		t.Errorf("scan error: %q %+v", texts, r.Checks)
	}

	broken.Store("")
	r, texts = l.run(t, t0.Add(time.Hour))
	wantTexts(t, "fixed", texts, "✅ [RESOLVED] WT009 CHECK_FAILED\nPassing again after 1h (failing since 2026-11-20 12:00 UTC).\nEvery check ran.")
	if alertOf(r, "WT009").Alert != watchtower.AlertResolved {
		t.Errorf("fixed: %+v", r.Checks)
	}
}

// A connection that goes away in the middle of a check is WT000, not WT009,
// even though the probe before it answered; the run does not count as one
// that reached the database, and the same process resolves it at its next
// run.
func TestAConnectionLostDuringACheckIsWT000(t *testing.T) {
	t.Parallel()
	var kill atomic.Bool
	kill.Store(true)
	check := watchtower.Check{Code: "WT098", Name: "DROPPED", Level: telegram.Warning,
		Measure: func(ctx context.Context, db watchtower.Querier, now time.Time) (watchtower.Outcome, error) {
			var ok bool
			q := `SELECT true`
			if kill.Load() {
				q = `SELECT pg_terminate_backend(pg_backend_pid())`
			}
			return watchtower.Outcome{Summary: "Fine."}, db.QueryRow(ctx, q).Scan(&ok)
		}}
	l := newLambda(t, check)
	w := watchtower.New(l.f.pool, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks})

	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "dropped", l.f.texts(0), "🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\nThe watchtower cannot query the database. The checks above could not be judged.\nWT098 DROPPED: ")
	if alertOf(r, "WT009").Outcome != "skipped" || alertOf(r, "WT000").Alert != watchtower.AlertFired {
		t.Errorf("dropped: %+v", r.Checks)
	}
	var runs int
	if err := l.f.pool.QueryRow(context.Background(), `SELECT count(*) FROM watchtower_runs`).Scan(&runs); err != nil || runs != 0 {
		t.Errorf("%d recorded runs (%v): a run that lost the database is not a successful one", runs, err)
	}

	kill.Store(false)
	l.f.clock.Set(t0.Add(15 * time.Minute))
	if _, err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "back", l.f.texts(1), "✅ [RESOLVED] WT000 DATABASE_UNREACHABLE\nThe database answers again, after 15m (failing since 2026-11-20 12:00 UTC as seen by this process).")
}

// A warm process that saw the outage resolves it even after one missed run,
// and gives both ends it knows.
func TestAWarmProcessResolvesTheOutageItSaw(t *testing.T) {
	t.Parallel()
	l := newLambda(t)
	pool := l.cuttablePool(t)
	w := watchtower.New(pool, client(t, l.f.srv), l.f.cfg, watchtower.Options{Now: l.f.clock.Now, Logger: l.f.watchtowerLogger(), Checks: l.checks})
	for _, step := range []struct {
		at   time.Duration
		down bool
	}{{0, false}, {15 * time.Minute, true}, {30 * time.Minute, false}} {
		l.down.Store(step.down)
		if step.down {
			// Idle connections die with the network.
			pool.Reset()
		}
		l.f.clock.Set(t0.Add(step.at))
		if _, err := w.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantTexts(t, "warm", l.f.texts(0), "🚨 [CRITICAL] WT000 DATABASE_UNREACHABLE\n",
		"✅ [RESOLVED] WT000 DATABASE_UNREACHABLE\nThe database answers again, after an outage of 15m to 30m (failing since 2026-11-20 12:15 UTC as seen by this process; the last run that reached it was at 2026-11-20 12:00 UTC).")
}
