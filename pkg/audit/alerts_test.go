package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// orphans makes a site with 100 events of which n have no session.
func (f *fixture) orphans(t *testing.T, publicID string, n int) (site, []string) {
	t.Helper()
	s := f.addSite(t, publicID, false, false)
	sessions := f.fill(t, s, visits{n: 100, created: t0.Add(-time.Minute)})
	events := f.eventsOf(t, s, sessions[:n])
	f.exec(t, `DELETE FROM sessions WHERE site_id = $1 AND id = ANY($2::uuid[])`, s.id, sessions[:n])
	return s, events
}

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

// Two runs at once (a retried Lambda beside the first, or dev and the
// CLI): the second waits on the first's alert row and finds it told.
func TestOverlappingRunsSendOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.orphans(t, "shop", 5)
	other, err := pgxpool.New(context.Background(), f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	a, b := f.auditor(t, audit.Options{}), f.auditor(t, audit.Options{}, other)

	f.srv.Hold()
	type result struct {
		r   audit.Report
		err error
	}
	results := make(chan result, 2)
	go func() { r, err := a.Run(context.Background()); results <- result{r, err} }()
	<-f.srv.Arrivals()
	go func() { r, err := b.Run(context.Background()); results <- result{r, err} }()
	waitForLockWaiter(t, f.pool)
	f.srv.Release()

	alerts := map[watchtower.Alert]int{}
	runs := map[int64]bool{}
	for range 2 {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		got, _ := res.r.Finding("AUD001", "shop")
		alerts[got.Alert]++
		runs[res.r.RunID] = true
	}
	wantTexts(t, "two runs", f.texts(0), "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 1 site\n")
	if alerts[watchtower.AlertFired] != 1 || alerts[watchtower.AlertNotDue] != 1 || len(runs) != 2 {
		t.Errorf("alerts of the two runs %v (runs %v), want one fired and one not_due, two runs recorded", alerts, runs)
	}
}

// waitForLockWaiter returns once a session of the test database waits on a
// lock (PostgreSQL's own view, not a guessed delay).
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

// A lasting problem is told again at the next day's run (which may come up
// to an hour early), not by a retry the same day; a fix sends RESOLVED for
// that site alone.
func TestALastingProblemRepeatsDailyAndAFixResolves(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shop, orphaned := f.orphans(t, "shop", 5)
	f.orphans(t, "other", 3)

	r := f.run(t)
	wantTexts(t, "first run", f.texts(0), "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 2 sites\n")
	for _, later := range []time.Duration{time.Minute, 30 * time.Minute, 23*time.Hour - time.Second} {
		f.clock.Set(t0.Add(later))
		r = f.run(t)
		wantTexts(t, "after "+later.String(), f.texts(1))
		if got, _ := r.Finding("AUD001", "shop"); got.Alert != watchtower.AlertNotDue {
			t.Errorf("after %s: alert %s, want not_due", later, got.Alert)
		}
	}
	// The window still holds the data 23 h on (it is a day long and the rows
	// are a minute old at t0); the next day's run comes an hour early.
	f.clock.Set(t0.Add(23 * time.Hour))
	r = f.run(t)
	msgs := f.texts(1)
	wantTexts(t, "next day", msgs, "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 2 sites\n")
	if !containsAll(msgs[0], "• shop (Site shop): 5 of 100 (5.00%", "Still failing after 23h (since 2026-11-20 03:15 UTC), reminder 1.") {
		t.Errorf("reminder:\n%s", msgs[0])
	}
	if got, _ := r.Finding("AUD001", "shop"); got.Alert != watchtower.AlertRepeated {
		t.Errorf("next day: alert %s, want repeated", got.Alert)
	}

	// The operator restores the sessions of shop's orphans.
	f.exec(t, `
		INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, created_at, traffic_source, device_type, pageviews, event_count)
		SELECT site_id, session_id, occurred_at, occurred_at, occurred_at, received_at, 'direct', 'desktop', 1, 1
		FROM events WHERE site_id = $1 AND id = ANY($2::uuid[])`, shop.id, orphaned)
	f.clock.Set(t0.Add(23*time.Hour + 10*time.Minute))
	r = f.run(t)
	msgs = f.texts(2)
	wantTexts(t, "after the fix", msgs, "✅ [RESOLVED] AUD001 ORPHANED_EVENTS passing again on 1 site\n• shop (Site shop): passing again after 23h 10m")
	if got, listed := r.Finding("AUD001", "shop"); !listed || got.Alert != watchtower.AlertResolved || got.Count != 0 {
		t.Errorf("after the fix: %+v (listed %v), want resolved with no anomaly", got, listed)
	}
	if got, _ := r.Finding("AUD001", "other"); got.Alert != watchtower.AlertNotDue {
		t.Errorf("the other site: %s, want still firing and not due", got.Alert)
	}
	if strings.Contains(msgs[0], "other") {
		t.Errorf("the RESOLVED names the other site:\n%s", msgs[0])
	}
}

// Telegram down: the findings are stored, the run fails, and the next run
// sends the alarm.
func TestASendThatFailsIsRetriedByTheNextRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.orphans(t, "shop", 5)
	f.srv.Script(telegramtest.ServerError(500), telegramtest.ServerError(502))
	r, err := f.auditor(t, audit.Options{}).Run(context.Background())
	var tg *telegram.Error
	if !errors.As(err, &tg) || tg.StatusCode != 502 {
		t.Fatalf("run error %v, want Telegram's 502", err)
	}
	if got, _ := r.Finding("AUD001", "shop"); got.Alert != watchtower.AlertSendFailed {
		t.Errorf("alert %s, want send_failed", got.Alert)
	}
	if got := f.storedFindings(t, r.RunID); len(got) != 1 || got[0] != "AUD001/shop 5/100 alarm samples:5" {
		t.Errorf("stored %v", got)
	}
	f.clock.Set(t0.Add(5 * time.Minute))
	f.run(t)
	wantTexts(t, "next run", f.texts(0), "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 1 site\n")
}

// A check whose query fails is AUD000, the run is failed, and the other
// checks still judge their sites; once every check runs, AUD000 resolves.
func TestACheckThatCannotRunIsAUD000(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.orphans(t, "shop", 5)
	broken := audit.CounterDrift()
	broken.SQL = strings.Replace(broken.SQL, "x.custom_events", "x.no_such_counter", 1)
	checks := []audit.Check{audit.OrphanedEvents(), broken}

	r, err := f.auditor(t, audit.Options{Checks: checks}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "AUD004 COUNTER_DRIFT") {
		t.Fatalf("run error %v, want one naming AUD004", err)
	}
	if c := checkOf(r, "AUD004"); c.Outcome != "error" || !strings.Contains(c.Error, "no_such_counter") {
		t.Errorf("AUD004 report %+v", c)
	}
	wantTexts(t, "failed check", f.texts(0),
		"🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 1 site\n",
		"🚨 [CRITICAL] AUD000 AUDIT_FAILED\nThe integrity audit of the data received 2026-11-19 03:15 – 2026-11-20 03:15 UTC could not run 1 check (AUD004 COUNTER_DRIFT)")
	if !strings.Contains(f.texts(1)[0], "no_such_counter") {
		t.Errorf("AUD000 does not give the error:\n%s", f.texts(1)[0])
	}
	var status, msg string
	if err := f.pool.QueryRow(context.Background(), `SELECT status, error FROM audit_runs WHERE id = $1`, r.RunID).Scan(&status, &msg); err != nil || status != "failed" || !strings.Contains(msg, "AUD004") {
		t.Errorf("audit_runs: %s %q (%v)", status, msg, err)
	}

	// Retried at once (Lambda retries a failed run): nothing is sent again.
	if _, err := f.auditor(t, audit.Options{Checks: checks}).Run(context.Background()); err == nil {
		t.Fatal("the retry should fail too")
	}
	wantTexts(t, "retry", f.texts(2))

	f.clock.Set(t0.Add(time.Hour))
	r = f.run(t)
	wantTexts(t, "every check runs", f.texts(2), "✅ [RESOLVED] AUD000 AUDIT_FAILED\n")
	if r.Failed.Alert != watchtower.AlertResolved {
		t.Errorf("AUD000 %+v", r.Failed)
	}
}

// --site restricts a run to one site: the others are neither judged nor
// resolved, and the run records the site.
func TestARunForOneSiteJudgesOnlyThatSite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shop, _ := f.orphans(t, "shop", 5)
	f.orphans(t, "other", 7)
	r, err := f.auditor(t, audit.Options{Site: "shop", Trigger: audit.TriggerCLI}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "one site", f.texts(0), "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 1 site\n")
	if msg := f.texts(0)[0]; !strings.Contains(msg, "• shop ") || strings.Contains(msg, "other") {
		t.Errorf("the alarm should name shop alone:\n%s", msg)
	}
	if c := checkOf(r, "AUD001"); c.SitesJudged != 1 || c.Denominator != 100 {
		t.Errorf("AUD001 %+v, want shop alone", c)
	}
	var siteID int64
	var trigger string
	if err := f.pool.QueryRow(context.Background(), `SELECT site_id, trigger FROM audit_runs WHERE id = $1`, r.RunID).Scan(&siteID, &trigger); err != nil || siteID != shop.id || trigger != "cli" {
		t.Errorf("audit_runs: site %d, trigger %s (%v)", siteID, trigger, err)
	}

	_, err = f.auditor(t, audit.Options{Site: "nope"}).Run(context.Background())
	if !errors.Is(err, audit.ErrUnknownSite) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown site: %v", err)
	}
}
