package watchtower_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// TestAnalyticsStaleRefreshesTheViewItself walks WT004 through its cases
// with only that check registered: a new installation is refreshed quietly;
// a refresh older than ANALYTICS_MAX_AGE is redone by the watchtower with a
// warning that says so, resolved once fresh; a refresh that fails is an
// alarm (WT000, naming WT004 and the cause).
func TestAnalyticsStaleRefreshesTheViewItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	srv := telegramtest.New(t)
	tg, err := telegram.New(srv.Config(), telegram.Options{Wait: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	// The refreshes are stamped by the database's clock, which is this
	// machine's: the watchtower runs on it too, and time "passes" by moving
	// the recorded refreshes into the past.
	cfg := config.Alerting{RepeatEvery: 6 * time.Hour, AnalyticsMaxAge: 90 * time.Minute}
	w := watchtower.New(pool, tg, cfg, watchtower.Options{Now: time.Now,
		Checks: []watchtower.Check{watchtower.AnalyticsStale(cfg.AnalyticsMaxAge)}})
	age := func(by string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `UPDATE analytics_refreshes SET started_at = now() - $1::interval, finished_at = now() - $1::interval`, by); err != nil {
			t.Fatal(err)
		}
	}
	run := func(step string) watchtower.CheckReport {
		t.Helper()
		r, err := w.Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for _, c := range r.Checks {
			if c.Code == "WT004" {
				return c
			}
		}
		t.Fatalf("%s: no WT004 in %+v", step, r.Checks)
		return watchtower.CheckReport{}
	}
	refreshes := func(trigger string) (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics_refreshes WHERE ok AND trigger = $1`, trigger).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if c := run("new installation"); c.Outcome != "pass" || c.Alert != watchtower.AlertNone || refreshes("watchtower") != 1 || len(srv.Messages()) != 0 {
		t.Fatalf("new installation: %+v, %d messages", c, len(srv.Messages()))
	}
	age("89 minutes")
	if c := run("within the maximum age"); c.Outcome != "pass" || refreshes("watchtower") != 1 {
		t.Fatalf("within the maximum age: %+v", c)
	}

	// pg_cron has not run for two hours.
	age("2 hours")
	c := run("stale")
	msgs := srv.Messages()
	if c.Outcome != "fail" || c.Alert != watchtower.AlertFired || refreshes("watchtower") != 2 || len(msgs) != 1 ||
		!strings.HasPrefix(msgs[0].Text, "⚠️ [WARNING] WT004 ANALYTICS_STALE\nThe daily analytics view was last refreshed 2h ago") ||
		!strings.Contains(msgs[0].Text, "The watchtower refreshed it itself") || !strings.Contains(msgs[0].Text, "opsmantik-refresh-analytics") {
		t.Fatalf("stale: %+v, messages %+v", c, msgs)
	}
	if c.Figures["last_refresh_by"] != "watchtower" || c.Figures["max_age"] != "1h 30m" {
		t.Errorf("figures %+v", c.Figures)
	}
	// Fresh again (the watchtower's own refresh): resolved.
	if c := run("after the refresh"); c.Outcome != "pass" || c.Alert != watchtower.AlertResolved ||
		!strings.HasPrefix(srv.Messages()[1].Text, "✅ [RESOLVED] WT004 ANALYTICS_STALE") {
		t.Fatalf("after the refresh: %+v, %+v", c, srv.Messages())
	}

	// The view cannot refresh: an alarm.
	if _, err := pool.Exec(ctx, `DROP INDEX mv_daily_analytics_summary_key`); err != nil {
		t.Fatal(err)
	}
	age("3 hours")
	c = run("failing refresh")
	msgs = srv.Messages()
	if c.Outcome != "error" || len(msgs) != 3 || !strings.HasPrefix(msgs[2].Text, "🚨 [CRITICAL] WT009 CHECK_FAILED") || !strings.Contains(msgs[2].Text, "WT004 ANALYTICS_STALE") ||
		!strings.Contains(msgs[2].Text, "WT004 ANALYTICS_STALE: the view's last successful refresh was 3h") ||
		!strings.Contains(msgs[2].Text, "the watchtower's own refresh failed") || !strings.Contains(msgs[2].Text, "concurrently") {
		t.Fatalf("failing refresh: %+v, messages %+v", c, msgs)
	}
}

// WT004 is registered with the configured maximum age.
func TestAnalyticsStaleIsRegistered(t *testing.T) {
	cfg := defaults(t)
	if cfg.AnalyticsMaxAge != 90*time.Minute {
		t.Errorf("ANALYTICS_MAX_AGE default %s", cfg.AnalyticsMaxAge)
	}
	var found bool
	for _, c := range watchtower.Checks(cfg) {
		if c.Code == "WT004" && c.Name == "ANALYTICS_STALE" && c.Level == telegram.Warning {
			found = true
		}
	}
	if !found {
		t.Error("WT004 ANALYTICS_STALE is not among the checks")
	}
}
