package stats_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// handSite is a site in Europe/Istanbul (UTC+3 all year) with ten sessions
// whose figures are worked out by hand below.
func handSite(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	site := addSite(t, pool, "hand", "Europe/Istanbul").ID
	other := addSite(t, pool, "other", "America/New_York").ID
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	insertSessions(t, pool, []session{
		// 2025-02-28 23:59:59 local: the day before the range.
		{site: site, started: utc("2025-02-28T20:59:59Z"), duration: sec(30), pageviews: 1},
		// 2025-03-01 00:30 local (still 2025-02-28 in UTC).
		{site: site, started: utc("2025-02-28T21:30:00Z"), duration: sec(61.5), pageviews: 1, source: "direct", device: "desktop"},
		// 2025-03-01 23:59:59.5 local, running past midnight: still 03-01.
		// Score 45 + 40 + 5 = 90 > 80: a qualified lead.
		{site: site, started: utc("2025-03-01T20:59:59.5Z"), duration: sec(85), pageviews: 3, phone: 1, whatsapp: 1, source: "google_ads", device: "mobile"},
		// A bot on 03-01 counts nowhere.
		{site: site, started: utc("2025-03-01T10:00:00Z"), duration: sec(300), pageviews: 10, phone: 1, bot: true, source: "google_ads", device: "mobile"},
		// 2025-03-02 00:00:00 local exactly.
		{site: site, started: utc("2025-03-01T21:00:00Z"), duration: sec(5), pageviews: 1, source: "social", device: "mobile"},              // bounced
		{site: site, started: utc("2025-03-02T08:00:00Z"), duration: sec(10), pageviews: 1, forms: 1, source: "referral", device: "tablet"}, // 10 s: engaged; score 50
		{site: site, started: utc("2025-03-02T09:00:00Z"), duration: sec(9.875), pageviews: 2, source: "paid", device: "desktop"},           // 2 pageviews: engaged
		{site: site, started: utc("2025-03-02T10:00:00Z"), duration: 0, pageviews: 1, source: "direct", device: "desktop"},                  // bounced
		{site: site, started: utc("2025-03-02T11:00:00Z"), duration: sec(9.5), pageviews: 1, source: "organic_search", device: "desktop"},   // bounced
		// 2025-03-03 local; returning (score 5).
		{site: site, started: utc("2025-03-03T12:00:00Z"), duration: sec(19.125), pageviews: 1, returning: true, source: "direct", device: "mobile"},
		// Another site's session on the same day is not counted.
		{site: other, started: utc("2025-03-02T12:00:00Z"), duration: sec(40), pageviews: 4, phone: 2},
	})
	return site
}

func fig(sessions, pageviews, conversions, converted, qualified int64, avg, bounce float64) stats.Figures {
	return stats.Figures{Sessions: sessions, Pageviews: pageviews, Conversions: conversions, ConvertedSessions: converted,
		QualifiedLeads: qualified, AvgDurationS: avg, BounceRate: bounce}
}

// TestFiguresByHand: every figure of STATS-API.md on a small example, from
// the view (after a refresh) and from the live rows alike.
func TestFiguresByHand(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	site := handSite(t, pool)
	refresh(t, pool)
	svc := stats.NewService(pool, stats.WithClock(fixedClock(time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC))))
	req := stats.Request{From: "2025-03-01", To: "2025-03-04"}

	want := stats.Answer{
		OK: true, Site: "hand", Timezone: "Europe/Istanbul", Currency: "EUR", From: "2025-03-01", To: "2025-03-04",
		// 8 sessions; pageviews 1+3+1+1+2+1+1+1; conversions 2 (phone,
		// whatsapp) + 1 (form); durations 61.5+85+5+10+9.875+0+9.5+19.125
		// = 200 s; bounced: the 5 s, the 0 s and the 9.5 s one-pageview
		// sessions.
		Totals: fig(8, 11, 3, 2, 1, 25, 0.375),
		Days: []stats.Day{
			{Date: "2025-03-01", Figures: fig(2, 4, 2, 1, 1, 73.25, 0)},   // (61.5+85)/2
			{Date: "2025-03-02", Figures: fig(5, 6, 1, 1, 0, 6.875, 0.6)}, // (5+10+9.875+0+9.5)/5, 3 of 5 bounced
			{Date: "2025-03-03", Figures: fig(1, 1, 0, 0, 0, 19.125, 0)},  //
			{Date: "2025-03-04", Figures: fig(0, 0, 0, 0, 0, 0, 0)},       // nothing: zeros
		},
		TrafficSources: []stats.SourceFigures{
			{TrafficSource: "direct", Figures: fig(3, 3, 0, 0, 0, 26.875, 1.0/3)}, // (61.5+0+19.125)/3
			{TrafficSource: "google_ads", Figures: fig(1, 3, 2, 1, 1, 85, 0)},
			{TrafficSource: "organic_search", Figures: fig(1, 1, 0, 0, 0, 9.5, 1)},
			{TrafficSource: "paid", Figures: fig(1, 2, 0, 0, 0, 9.875, 0)},
			{TrafficSource: "referral", Figures: fig(1, 1, 1, 1, 0, 10, 0)},
			{TrafficSource: "social", Figures: fig(1, 1, 0, 0, 0, 5, 1)},
		},
		Devices: []stats.DeviceFigures{
			{DeviceType: "desktop", Figures: fig(4, 5, 0, 0, 0, 20.21875, 0.5)}, // (61.5+9.875+0+9.5)/4
			{DeviceType: "mobile", Figures: fig(3, 5, 2, 1, 1, 36.375, 1.0/3)},  // (85+5+19.125)/3
			{DeviceType: "tablet", Figures: fig(1, 1, 1, 1, 0, 10, 0)},
		},
	}
	for name, get := range map[string]func(context.Context, int64, stats.Request) (stats.Answer, error){
		"view": svc.Summary, "live": svc.LiveSummary,
	} {
		got, err := get(context.Background(), site, req)
		if err != nil {
			t.Fatal(err)
		}
		if got.ServedFrom.ViewDays+got.ServedFrom.LiveDays != 4 || (name == "view") != (got.ServedFrom.ViewDays == 4) {
			t.Errorf("%s: served_from %+v", name, got.ServedFrom)
		}
		if !reflect.DeepEqual(withoutServedFrom(got), want) {
			g, _ := json.MarshalIndent(withoutServedFrom(got), "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("%s path:\n got %s\nwant %s", name, g, w)
		}
	}

	// Filters: direct traffic only; then mobile direct traffic.
	got, err := svc.Summary(context.Background(), site, stats.Request{From: "2025-03-01", To: "2025-03-04", TrafficSource: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals != want.TrafficSources[0].Figures || len(got.TrafficSources) != 1 || got.TrafficSources[0].TrafficSource != "direct" ||
		!reflect.DeepEqual(got.Devices, []stats.DeviceFigures{
			{DeviceType: "desktop", Figures: fig(2, 2, 0, 0, 0, 30.75, 0.5)},
			{DeviceType: "mobile", Figures: fig(1, 1, 0, 0, 0, 19.125, 0)},
		}) || got.Days[1].Figures != fig(1, 1, 0, 0, 0, 0, 1) {
		t.Errorf("direct only: %+v", got)
	}
	got, err = svc.Summary(context.Background(), site, stats.Request{From: "2025-03-01", To: "2025-03-04", TrafficSource: "direct", DeviceType: "mobile"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals != fig(1, 1, 0, 0, 0, 19.125, 0) || got.Days[2].Figures != got.Totals || got.Days[0].Figures != (stats.Figures{}) {
		t.Errorf("direct mobile: %+v", got)
	}

	// The day before the range holds the 23:59:59 session.
	got, err = svc.Summary(context.Background(), site, stats.Request{From: "2025-02-28", To: "2025-02-28"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals != fig(1, 1, 0, 0, 0, 30, 0) {
		t.Errorf("2025-02-28: %+v", got.Totals)
	}
}

// TestTheViewsOwnRatiosAreTheCombiners: the view's avg_duration and
// bounce_rate columns are its sums through the same two functions.
func TestTheViewsOwnRatiosAreTheCombiners(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	handSite(t, pool)
	refresh(t, pool)
	var rows, mismatched int
	err := pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE avg_duration IS DISTINCT FROM analytics_avg_duration_s(duration_sum_s, total_sessions)
		                                     OR bounce_rate IS DISTINCT FROM analytics_bounce_rate(bounced_sessions, total_sessions))
		FROM mv_daily_analytics_summary`).Scan(&rows, &mismatched)
	if err != nil {
		t.Fatal(err)
	}
	// 2 + 5 + 1 in range, 1 the day before, 1 of the other site (one row
	// per day, source and device).
	if rows != 10 || mismatched != 0 {
		t.Errorf("%d rows, %d with other ratios", rows, mismatched)
	}
}
