package watchtower_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// TestConversionBacklogFiresAndResolves: WT005 fires for a conversion
// unfinished past CONVERSION_BACKLOG_AFTER, again for a configuration
// error, and resolves once both are dealt with.
func TestConversionBacklogFiresAndResolves(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	site, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "shop", Domains: []string{"shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := telegramtest.New(t)
	tg, err := telegram.New(srv.Config(), telegram.Options{Wait: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var alerting config.Alerting
	if err := config.LoadFrom(ctx, envconfig.MapLookuper(nil), &alerting); err != nil {
		t.Fatal(err)
	}
	var check watchtower.Check
	for _, c := range watchtower.Checks(alerting) {
		if c.Code == "WT005" {
			check = c
		}
	}
	if check.Name != "CONVERSION_BACKLOG" {
		t.Fatal("WT005 CONVERSION_BACKLOG is not registered in Checks")
	}
	w := watchtower.New(pool, tg, alerting, watchtower.Options{Now: clock, Checks: []watchtower.Check{check}})
	run := func(step string) watchtower.CheckReport {
		t.Helper()
		r, err := w.Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for _, c := range r.Checks {
			if c.Code == "WT005" {
				return c
			}
		}
		t.Fatalf("%s: no WT005 in %+v", step, r)
		return watchtower.CheckReport{}
	}
	insert := func(click, status string, created time.Time, code, class string) string {
		t.Helper()
		var id string
		err := pool.QueryRow(ctx, `
			INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, value, currency, converted_at, created_at,
			                         status, last_error_code, last_error_class)
			VALUES ($1, gen_random_uuid(), 'google_ads', 'gclid', $2, 95, 'USD', $3, $3, $4, nullif($5, ''), nullif($6, '')) RETURNING id::text`,
			site.ID, click, created, status, code, class).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	if r := run("empty"); r.Outcome != "pass" || len(srv.Messages()) != 0 {
		t.Fatalf("empty: %+v, %d messages", r, len(srv.Messages()))
	}
	pending := insert("a", "pending", now.Add(-30*time.Minute), "", "")
	if r := run("30 minutes pending"); r.Outcome != "pass" {
		t.Fatalf("a row younger than 1h: %+v", r)
	}
	// Runs come every 15 minutes or so (a longer gap would resolve WT000).
	now = now.Add(20 * time.Minute)
	if r := run("50 minutes pending"); r.Outcome != "pass" {
		t.Fatalf("a row younger than 1h: %+v", r)
	}
	now = now.Add(25 * time.Minute)
	r := run("75 minutes pending")
	msgs := srv.Messages()
	if r.Outcome != "fail" || r.Alert != watchtower.AlertFired || len(msgs) != 1 ||
		!strings.HasPrefix(msgs[0].Text, "🚨 [CRITICAL] WT005 CONVERSION_BACKLOG\n1 conversions unfinished for more than 1h (1 pending") ||
		!strings.Contains(msgs[0].Text, "pending: 1") || !strings.Contains(msgs[0].Text, "oldest: 1h 15m") {
		t.Fatalf("fired: %+v\n%+v", r, msgs)
	}

	// Uploaded at last; a configuration error keeps it failing, with its code.
	if _, err := pool.Exec(ctx, `UPDATE conversions SET status = 'uploaded' WHERE id = $1`, pending); err != nil {
		t.Fatal(err)
	}
	failed := insert("b", "failed", now, "NO_CONVERSION_ACTION_FOUND", "config_error")
	insert("c", "failed", now, "EXPIRED_EVENT", "permanent") // data: not the operator's
	r = run("config error")
	if r.Outcome != "fail" || r.Figures["config_errors"] != int64(1) || r.Figures["config_error_codes"] != "NO_CONVERSION_ACTION_FOUND ×1" || r.Figures["pending"] != int64(0) {
		t.Fatalf("config error: %+v", r)
	}

	// The operator fixes the action and re-drives the row: it is uploaded.
	if _, err := pool.Exec(ctx, `UPDATE conversions SET status = 'uploaded' WHERE id = $1`, failed); err != nil {
		t.Fatal(err)
	}
	r = run("resolved")
	msgs = srv.Messages()
	if r.Outcome != "pass" || r.Alert != watchtower.AlertResolved || len(msgs) != 2 ||
		!strings.HasPrefix(msgs[1].Text, "✅ [RESOLVED] WT005 CONVERSION_BACKLOG\n") {
		t.Fatalf("resolved: %+v\n%+v", r, msgs)
	}
}
