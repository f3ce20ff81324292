package watchtower_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

const week = 7 * 24 * time.Hour

// history gives a site data older than its four-week baseline.
func history(now time.Time) siteSessions { return siteSessions{at: now.Add(-6 * week), n: 1} }

// baseline puts counts[k-1] sessions into the window that ended k weeks
// before now (UTC sites), at offset before that window's end.
func baseline(now time.Time, offset time.Duration, clickID bool, counts ...int) []siteSessions {
	var rows []siteSessions
	for k, n := range counts {
		rows = append(rows, siteSessions{at: now.Add(-time.Duration(k+1)*week - offset), n: n, clickID: clickID})
	}
	return rows
}

// trafficOnly is a watchtower with WT001 alone, so that a test sees only the
// per-site traffic alerts (the installation has traffic in these tests).
func (f *fixture) trafficOnly(t *testing.T, pool *pgxpool.Pool) *watchtower.Watchtower {
	return f.watchtower(t, pool, watchtower.TrafficLoss(f.cfg.TrafficWindow, f.cfg.SiteMinExpected))
}

func siteOf(r watchtower.Report, code, publicID string) watchtower.SiteReport {
	for _, c := range r.Checks {
		if c.Code != code {
			continue
		}
		for _, s := range c.Sites {
			if s.PublicID == publicID {
				return s
			}
		}
	}
	return watchtower.SiteReport{}
}

// Every judged and not-judged case at once, each at its edge.
func TestASiteThatGoesQuietWhenItIsNormallyBusyAlarmsAndOthersDoNot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.trafficOnly(t, f.pool)
	type site struct {
		publicID, name string
		rows           []siteSessions
		alarm          bool
	}
	now := t0
	sites := []site{
		{"quiet-busy", "Busy & <Quiet>", append(baseline(now, 30*time.Minute, false, 8, 8, 8, 8), history(now)), true},
		{"live-busy", "Live", append(baseline(now, 30*time.Minute, false, 8, 8, 8, 8), history(now), siteSessions{at: now.Add(-time.Hour), n: 1}), false},
		{"exactly-five", "", append(baseline(now, 59*time.Minute, false, 4, 6, 5, 5), history(now)), true},
		{"just-under-five", "Under", append(baseline(now, time.Second, false, 5, 5, 5, 4), history(now)), false},
		{"normally-quiet", "Quiet", append(baseline(now, 30*time.Minute, false, 1, 0, 2, 1), history(now)), false},
		// Busy, but its oldest session is in the oldest baseline window: less than four weeks of data.
		{"new", "New", baseline(now, 30*time.Minute, false, 10, 10, 10, 10), false},
		{"no-sessions-at-all", "Empty", nil, false},
		// Only bots now: no traffic.
		{"bots-only-now", "Bots", append(baseline(now, 30*time.Minute, false, 6, 6, 6, 6), history(now), siteSessions{at: now.Add(-time.Minute), n: 3, bot: true}), true},
		// Sessions just outside the baseline windows do not count.
		{"outside-the-windows", "Outside", append(append(baseline(now, time.Hour+time.Second, false, 9, 9, 9, 9), baseline(now, -time.Second, false, 9, 9, 9, 9)...), history(now)), false},
	}
	for _, s := range sites {
		insertSiteSessions(t, f.pool, addSite(t, f.pool, s.publicID, s.name, "UTC"), s.rows...)
	}

	r := f.run(t)
	msgs := f.texts(0)
	wantTexts(t, "quiet sites", msgs, "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 3 sites\nNo non-bot sessions started in the last 1h on these sites, though their own history expects them (at least 5 on average in the same local hour-of-week over the last 4 weeks):\n")
	for _, want := range []string{
		"• quiet-busy (Busy & <Quiet>): none started in the last 1h; expected 8 (mean of 8, 8, 8, 8 in the same 1h window 1–4 weeks earlier, UTC time). Failing since 2026-11-20 12:00 UTC.\n",
		"• exactly-five: none started in the last 1h; expected 5 (mean of 4, 6, 5, 5 in the same 1h window 1–4 weeks earlier, UTC time).",
		"• bots-only-now (Bots): none started in the last 1h; expected 6 (mean of 6, 6, 6, 6",
		"Each site is repeated every 6h while it lasts and resolved on its own.",
	} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("the message lacks %q:\n%s", want, msgs[0])
		}
	}
	for _, s := range sites {
		got := siteOf(r, "WT001", s.publicID)
		if s.alarm != (got.Alert == watchtower.AlertFired) || s.alarm != strings.Contains(msgs[0], "• "+s.publicID) {
			t.Errorf("%s: alert %q; want an alarm: %v", s.publicID, got.Alert, s.alarm)
		}
	}
	wt001 := alertOf(r, "WT001")
	// Judged: the three alarms and the site with traffic; the rest are not judged.
	if wt001.Outcome != "pass" || wt001.SitesJudged != 4 || wt001.SitesFailing != 3 || len(wt001.Sites) != 3 {
		t.Errorf("WT001 report %+v", wt001)
	}
	if got := siteOf(r, "WT001", "quiet-busy"); got.Figures["expected"] != 8.0 || got.Figures["started"] != 0 {
		t.Errorf("quiet-busy figures %v", got.Figures)
	}
	var rows int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM alert_state WHERE code = 'WT001' AND site_id IS NOT NULL AND firing`).Scan(&rows); err != nil || rows != 3 {
		t.Errorf("%d firing per-site rows (%v), want 3", rows, err)
	}
}

// The same site at two hours: quiet at 03:00, when it is always quiet, is no
// alarm; quiet at 12:00, when it is always busy, is one.
func TestAQuietHourThatIsNormallyQuietDoesNotAlarm(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.trafficOnly(t, f.pool)
	shop := addSite(t, f.pool, "shop", "Shop", "UTC")
	insertSiteSessions(t, f.pool, shop, append(baseline(t0, 20*time.Minute, false, 12, 9, 11, 10), history(t0))...)
	// Another site keeps the installation busy at both hours.
	other := addSite(t, f.pool, "other", "Other", "UTC")
	night := t0.Add(-9 * time.Hour)
	insertSiteSessions(t, f.pool, other, siteSessions{at: night.Add(-time.Minute), n: 1}, siteSessions{at: t0.Add(-time.Minute), n: 1})

	f.clock.Set(night)
	r := f.run(t)
	wantTexts(t, "03:00", f.texts(0))
	if got := alertOf(r, "WT001"); got.SitesFailing != 0 || len(got.Sites) != 0 {
		t.Errorf("03:00: %+v", got)
	}

	f.clock.Set(t0)
	f.run(t)
	wantTexts(t, "12:00", f.texts(0), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 1 site\n")
	if !strings.Contains(f.texts(0)[0], "• shop (Shop): none started in the last 1h; expected 10.5 (mean of 12, 9, 11, 10 ") {
		t.Errorf("12:00 message: %s", f.texts(0)[0])
	}
}

// The baseline is the same local hour-of-week: across the end of summer
// time the four windows lie at different UTC hours.
func TestTheBaselineFollowsTheSitesTimeZoneAcrossADaylightSavingChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.trafficOnly(t, f.pool)
	// t0 is Friday 2026-11-20 13:00 in Berlin (CET, UTC+1); four weeks
	// earlier, 2026-10-23 13:00 was still summer time (CEST, UTC+2).
	berlin := addSite(t, f.pool, "berlin", "Berlin", "Europe/Berlin")
	utc := addSite(t, f.pool, "utc", "UTC twin", "UTC")
	for _, s := range []watchtower.Site{berlin, utc} {
		insertSiteSessions(t, f.pool, s, history(t0),
			siteSessions{at: t0.Add(-1*week - 30*time.Minute), n: 6}, // 12:30 CET
			siteSessions{at: t0.Add(-2*week - 30*time.Minute), n: 6},
			siteSessions{at: t0.Add(-3*week - 30*time.Minute), n: 6},
			siteSessions{at: t0.Add(-4*week - 90*time.Minute), n: 6}, // 12:30 CEST = 10:30 UTC
		)
	}
	insertSiteSessions(t, f.pool, addSite(t, f.pool, "live", "Live", "UTC"), siteSessions{at: t0.Add(-time.Minute), n: 1})
	r := f.run(t)
	if got := siteOf(r, "WT001", "berlin"); got.Alert != watchtower.AlertFired || got.Figures["expected"] != 6.0 {
		t.Errorf("berlin: %+v", got)
	}
	// In UTC the fourth window is 11:00–12:00, which had nothing: 4.5 < 5.
	if got := siteOf(r, "WT001", "utc"); got.Alert != "" {
		t.Errorf("utc: %+v, want not judged", got)
	}
	wantTexts(t, "berlin", f.texts(0), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 1 site\n")
	if !strings.Contains(f.texts(0)[0], "mean of 6, 6, 6, 6 in the same 1h window 1–4 weeks earlier, Europe/Berlin time") {
		t.Errorf("message %s", f.texts(0)[0])
	}
}

// Two sites fire in one message; each then resolves and repeats on its own,
// and the installation's row is not touched by either.
func TestEachSiteFiresRepeatsAndResolvesOnItsOwn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.trafficOnly(t, f.pool)
	a := addSite(t, f.pool, "site-a", "Site A", "UTC")
	b := addSite(t, f.pool, "site-b", "Site B", "UTC")
	live := addSite(t, f.pool, "live", "Live", "UTC")
	for _, s := range []watchtower.Site{a, b} {
		insertSiteSessions(t, f.pool, s, append(baseline(t0, 10*time.Minute, false, 7, 7, 7, 7), history(t0))...)
		// The same hours of the rest of the day are busy too.
		for h := 1; h <= 8; h++ {
			insertSiteSessions(t, f.pool, s, baseline(t0.Add(time.Duration(h)*time.Hour), 10*time.Minute, false, 7, 7, 7, 7)...)
		}
	}
	keepLive := func(now time.Time) {
		insertSiteSessions(t, f.pool, live, siteSessions{at: now.Add(-time.Minute), n: 1})
	}

	keepLive(t0)
	r := f.run(t)
	wantTexts(t, "both quiet", f.texts(0), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 2 sites\n")
	if m := f.texts(0)[0]; !strings.Contains(m, "• site-a (Site A): none started") || !strings.Contains(m, "• site-b (Site B): none started") {
		t.Errorf("one message should name both sites: %s", m)
	}
	if alertOf(r, "WT001").Alert != watchtower.AlertNone || len(r.Sent()) != 2 {
		t.Errorf("the installation passes; sent %v", r.Sent())
	}

	// 1 h later A has traffic again: A alone resolves, B is not due.
	now := t0.Add(time.Hour)
	f.clock.Set(now)
	keepLive(now)
	insertSiteSessions(t, f.pool, a, siteSessions{at: now.Add(-5 * time.Minute), n: 2})
	r = f.run(t)
	wantTexts(t, "A back", f.texts(1), "✅ [RESOLVED] WT001 TRAFFIC_LOSS passing again on 1 site\n• site-a (Site A): passing again after 1h (failing since 2026-11-20 12:00 UTC). Non-bot sessions started again in the last 1h.")
	if siteOf(r, "WT001", "site-a").Alert != watchtower.AlertResolved || siteOf(r, "WT001", "site-b").Alert != watchtower.AlertNotDue {
		t.Errorf("A back: %+v", alertOf(r, "WT001").Sites)
	}

	// 6 h after the first alarm B is due a reminder; A (back to quiet but
	// resolved an hour ago) starts a new incident: one message for both.
	now = t0.Add(6 * time.Hour)
	f.clock.Set(now)
	keepLive(now)
	r = f.run(t)
	wantTexts(t, "6h", f.texts(2), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 2 sites\n")
	if m := f.texts(2)[0]; !strings.Contains(m, "• site-a (Site A): none started in the last 1h; expected 7 (mean of 7, 7, 7, 7 in the same 1h window 1–4 weeks earlier, UTC time). Failing since 2026-11-20 18:00 UTC.") ||
		!strings.Contains(m, "• site-b (Site B): none started in the last 1h; expected 7 (mean of 7, 7, 7, 7 in the same 1h window 1–4 weeks earlier, UTC time). Still failing after 6h (since 2026-11-20 12:00 UTC), reminder 1.") {
		t.Errorf("6h message: %s", m)
	}
	if siteOf(r, "WT001", "site-a").Alert != watchtower.AlertFired || siteOf(r, "WT001", "site-b").Alert != watchtower.AlertRepeated {
		t.Errorf("6h: %+v", alertOf(r, "WT001").Sites)
	}

	// Both back: one RESOLVED naming both.
	now = t0.Add(7 * time.Hour)
	f.clock.Set(now)
	keepLive(now)
	insertSiteSessions(t, f.pool, a, siteSessions{at: now.Add(-time.Minute), n: 1})
	insertSiteSessions(t, f.pool, b, siteSessions{at: now.Add(-time.Minute), n: 1})
	f.run(t)
	wantTexts(t, "both back", f.texts(3), "✅ [RESOLVED] WT001 TRAFFIC_LOSS passing again on 2 sites\n• site-a (Site A): passing again after 1h (failing since 2026-11-20 18:00 UTC).")
	if !strings.Contains(f.texts(3)[0], "• site-b (Site B): passing again after 7h (failing since 2026-11-20 12:00 UTC).") {
		t.Errorf("both back: %s", f.texts(3)[0])
	}
	var installation int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM alert_state WHERE site_id IS NULL AND code = 'WT001' AND firing`).Scan(&installation); err != nil || installation != 0 {
		t.Errorf("the installation's WT001 is firing (%d, %v)", installation, err)
	}
}

// The click-id check per site: a site that normally gets Google ad clicks
// at this hour alarms when none arrive; a site without ads is not judged.
func TestASiteThatNormallyGetsAdClicksAlarmsWhenTheyStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.watchtower(t, f.pool, watchtower.ClickIDLoss(f.cfg.ClickIDWindow, f.cfg.SiteMinExpected))
	ads := addSite(t, f.pool, "ads", "Ads", "UTC")
	noAds := addSite(t, f.pool, "no-ads", "No ads", "UTC")
	adsLive := addSite(t, f.pool, "ads-live", "Ads live", "UTC")
	for _, s := range []watchtower.Site{ads, noAds, adsLive} {
		// Busy with visits without a click id now and in the baseline.
		insertSiteSessions(t, f.pool, s, append(baseline(t0, time.Hour, false, 20, 20, 20, 20), history(t0), siteSessions{at: t0.Add(-time.Minute), n: 5})...)
	}
	for _, s := range []watchtower.Site{ads, adsLive} {
		// 3-hour window: 2 h 59 m before each baseline end is still inside.
		insertSiteSessions(t, f.pool, s, baseline(t0, 3*time.Hour-time.Minute, true, 5, 6, 5, 4)...)
	}
	insertSiteSessions(t, f.pool, adsLive, siteSessions{at: t0.Add(-3 * time.Hour), n: 1, clickID: true})

	r := f.run(t)
	wantTexts(t, "clicks stopped", f.texts(0), "🚨 [CRITICAL] WT002 GCLID_LOSS on 1 site\nNo non-bot sessions with a Google click id started in the last 3h on these sites")
	if !strings.Contains(f.texts(0)[0], "• ads (Ads): none started in the last 3h; expected 5 (mean of 5, 6, 5, 4 in the same 3h window 1–4 weeks earlier, UTC time).") {
		t.Errorf("message %s", f.texts(0)[0])
	}
	if siteOf(r, "WT002", "no-ads").Alert != "" || alertOf(r, "WT002").SitesJudged != 2 {
		t.Errorf("report %+v", alertOf(r, "WT002"))
	}
}

// Two runs at once (two Lambda instances) tell a site once.
func TestConcurrentRunsSendEachSiteAlertOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other, err := pgxpool.New(context.Background(), f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	for _, id := range []string{"site-a", "site-b"} {
		insertSiteSessions(t, f.pool, addSite(t, f.pool, id, id, "UTC"), append(baseline(t0, 10*time.Minute, false, 7, 7, 7, 7), history(t0))...)
	}
	insertSiteSessions(t, f.pool, addSite(t, f.pool, "live", "Live", "UTC"), siteSessions{at: t0.Add(-time.Minute), n: 1})
	a, b := f.trafficOnly(t, f.pool), f.trafficOnly(t, other)

	f.srv.Hold()
	type result struct {
		r   watchtower.Report
		err error
	}
	results := make(chan result, 2)
	go func() { r, err := a.Run(context.Background()); results <- result{r, err} }()
	<-f.srv.Arrivals()
	go func() { r, err := b.Run(context.Background()); results <- result{r, err} }()
	waitForLockWaiter(t, f.pool)
	f.srv.Release()

	alerts := map[watchtower.Alert]int{}
	for range 2 {
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		for _, id := range []string{"site-a", "site-b"} {
			alerts[siteOf(res.r, "WT001", id).Alert]++
		}
	}
	wantTexts(t, "two runs", f.texts(0), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 2 sites\n")
	if alerts[watchtower.AlertFired] != 2 || alerts[watchtower.AlertNotDue] != 2 {
		t.Errorf("site alerts of the two runs: %v, want each site fired once and not_due once", alerts)
	}
}

// A failed send of a per-site message leaves every site in it for the next run.
func TestTelegramDownLeavesTheSitesForTheNextRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.trafficOnly(t, f.pool)
	insertSiteSessions(t, f.pool, addSite(t, f.pool, "site-a", "A", "UTC"), append(baseline(t0, 10*time.Minute, false, 7, 7, 7, 7), history(t0))...)
	insertSiteSessions(t, f.pool, addSite(t, f.pool, "live", "Live", "UTC"), siteSessions{at: t0.Add(-time.Minute), n: 1})
	f.srv.Script(telegramtest.ServerError(500), telegramtest.ServerError(500))
	r, err := f.w.Run(context.Background())
	if err == nil || siteOf(r, "WT001", "site-a").Alert != watchtower.AlertSendFailed {
		t.Fatalf("run: %v, %+v", err, alertOf(r, "WT001"))
	}
	f.clock.Set(t0.Add(15 * time.Minute))
	r = f.run(t)
	wantTexts(t, "next run", f.texts(0), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS on 1 site\n")
	if siteOf(r, "WT001", "site-a").Alert != watchtower.AlertFired || !strings.Contains(f.texts(0)[0], "Failing since 2026-11-20 12:15 UTC.") {
		t.Errorf("next run: %+v\n%s", alertOf(r, "WT001").Sites, f.texts(0)[0])
	}
}
