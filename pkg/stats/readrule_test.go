package stats_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// TestReadRule: days before the site-local date of the last refresh come
// from the view, the others from the live rows. A session written after the
// refresh (late data) shows only on live days, which proves where each day
// came from.
func TestReadRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	tokyo := mustLoad(t, "Asia/Tokyo")
	site := addSite(t, pool, "tokyo", "Asia/Tokyo").ID
	at := func(day, hour int) time.Time { return time.Date(2025, 6, day, hour, 0, 0, 0, tokyo) }
	insertSessions(t, pool, []session{
		{site: site, started: at(1, 12), duration: 20 * time.Second},
		{site: site, started: at(2, 12), duration: 20 * time.Second},
		{site: site, started: at(3, 12), duration: 20 * time.Second},
	})
	now := at(3, 18)
	svc := stats.NewService(pool, stats.WithClock(fixedClock(now)))
	summary := func(req stats.Request) stats.Answer {
		t.Helper()
		a, err := svc.Summary(ctx, site, req)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	sessionsByDay := func(a stats.Answer) []int64 {
		var n []int64
		for _, d := range a.Days {
			n = append(n, d.Sessions)
		}
		return n
	}
	served := func(t *testing.T, a stats.Answer, view, live int, refreshed *time.Time) {
		t.Helper()
		var want *string
		if refreshed != nil {
			s := refreshed.UTC().Format(time.RFC3339Nano)
			want = &s
		}
		if a.ServedFrom.ViewDays != view || a.ServedFrom.LiveDays != live || !reflect.DeepEqual(a.ServedFrom.ViewRefreshedAt, want) {
			got := "<nil>"
			if a.ServedFrom.ViewRefreshedAt != nil {
				got = *a.ServedFrom.ViewRefreshedAt
			}
			t.Errorf("served_from = %d view, %d live, refreshed %s; want %d, %d, %v", a.ServedFrom.ViewDays, a.ServedFrom.LiveDays, got, view, live, want)
		}
	}
	june1to3 := stats.Request{From: "2025-06-01", To: "2025-06-03"}

	t.Run("never refreshed: everything is live", func(t *testing.T) {
		a := summary(june1to3)
		served(t, a, 0, 3, nil)
		if got := sessionsByDay(a); !reflect.DeepEqual(got, []int64{1, 1, 1}) {
			t.Errorf("sessions by day %v", got)
		}
	})

	// Refreshed on June 3rd at 09:05 Tokyo time (00:05 UTC): June 1st and
	// 2nd come from the view.
	refresh(t, pool)
	refreshed := time.Date(2025, 6, 3, 9, 5, 0, 0, tokyo)
	refreshedAt(t, pool, refreshed)
	// Late data on every day, after the refresh.
	insertSessions(t, pool, []session{
		{site: site, started: at(1, 13), duration: time.Second},
		{site: site, started: at(2, 13), duration: time.Second},
		{site: site, started: at(3, 13), duration: time.Second},
	})

	t.Run("past days from the view, the rest live", func(t *testing.T) {
		a := summary(june1to3)
		served(t, a, 2, 1, &refreshed)
		if got := sessionsByDay(a); !reflect.DeepEqual(got, []int64{1, 1, 2}) {
			t.Errorf("sessions by day %v, want the view's 1, 1 and today's live 2", got)
		}
		live, err := svc.LiveSummary(ctx, site, june1to3)
		if err != nil {
			t.Fatal(err)
		}
		served(t, live, 0, 3, &refreshed)
		if got := sessionsByDay(live); !reflect.DeepEqual(got, []int64{2, 2, 2}) {
			t.Errorf("all live: sessions by day %v", got)
		}
	})
	t.Run("today only is all live", func(t *testing.T) {
		a := summary(stats.Request{Period: "today"})
		served(t, a, 0, 1, &refreshed)
		if a.From != "2025-06-03" || a.To != "2025-06-03" || a.Totals.Sessions != 2 {
			t.Errorf("today: %s..%s, %d sessions", a.From, a.To, a.Totals.Sessions)
		}
	})
	t.Run("a period ends today", func(t *testing.T) {
		a := summary(stats.Request{Period: "7d"})
		served(t, a, 6, 1, &refreshed)
		if a.From != "2025-05-28" || a.To != "2025-06-03" || len(a.Days) != 7 || a.Totals.Sessions != 4 {
			t.Errorf("7d: %s..%s, %d days, %d sessions", a.From, a.To, len(a.Days), a.Totals.Sessions)
		}
	})
	t.Run("a range before the refresh is all view", func(t *testing.T) {
		a := summary(stats.Request{From: "2025-05-01", To: "2025-06-02"})
		served(t, a, 33, 0, &refreshed)
		if a.Totals.Sessions != 2 {
			t.Errorf("%d sessions, want the view's 2", a.Totals.Sessions)
		}
	})
	t.Run("days after today are live (and empty)", func(t *testing.T) {
		a := summary(stats.Request{From: "2025-06-02", To: "2025-06-05"})
		served(t, a, 1, 3, &refreshed)
		if got := sessionsByDay(a); !reflect.DeepEqual(got, []int64{1, 2, 0, 0}) {
			t.Errorf("sessions by day %v", got)
		}
	})
	t.Run("the cutoff is the site-local date of the refresh", func(t *testing.T) {
		// 2025-06-02 23:30 UTC is June 3rd in Tokyo but June 2nd in UTC.
		other := addSite(t, pool, "utc", "UTC").ID
		if _, err := pool.Exec(ctx, `DELETE FROM analytics_refreshes`); err != nil {
			t.Fatal(err)
		}
		refresh(t, pool)
		instant := time.Date(2025, 6, 2, 23, 30, 0, 0, time.UTC)
		refreshedAt(t, pool, instant)
		a := summary(june1to3)
		served(t, a, 2, 1, &instant)
		b, err := svc.Summary(ctx, other, june1to3)
		if err != nil {
			t.Fatal(err)
		}
		served(t, b, 1, 2, &instant)
	})
	t.Run("a failed refresh is not a refresh", func(t *testing.T) {
		before := summary(june1to3).ServedFrom
		if _, err := pool.Exec(ctx, `INSERT INTO analytics_refreshes (started_at, finished_at, ms, trigger, ok, error)
			VALUES ($1, $1, 1, 'test', false, 'boom')`, time.Date(2025, 6, 3, 23, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if after := summary(june1to3).ServedFrom; !reflect.DeepEqual(after, before) {
			t.Errorf("served_from %+v after a failed refresh, was %+v", after, before)
		}
	})
}

// TestAChangedSiteIsLiveUntilTheNextRefresh: the view's rows were counted
// under the site's old time zone or lead threshold; until a refresh counts
// them again, the answer is all live.
func TestAChangedSiteIsLiveUntilTheNextRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	site := addSite(t, pool, "moving", "Europe/Berlin")
	insertSessions(t, pool, []session{
		// 23:30 in Berlin on June 1st; June 2nd in Istanbul.
		{site: site.ID, started: time.Date(2025, 6, 1, 21, 30, 0, 0, time.UTC), duration: time.Minute, phone: 1, whatsapp: 1},
	})
	refresh(t, pool)
	svc := stats.NewService(pool, stats.WithClock(fixedClock(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC))))
	req := stats.Request{From: "2025-06-01", To: "2025-06-02"}
	for _, c := range []struct {
		name    string
		changes sites.Changes
		days    []int64
		leads   int64
	}{
		{"time zone", sites.Changes{Timezone: ptr("Europe/Istanbul")}, []int64{0, 1}, 1},
		{"lead threshold", sites.Changes{LeadThreshold: ptr(90)}, []int64{0, 1}, 0},
	} {
		if _, err := sites.Update(ctx, pool, "moving", c.changes); err != nil {
			t.Fatal(err)
		}
		for _, when := range []string{"before the refresh", "after it"} {
			a, err := svc.Summary(ctx, site.ID, req)
			if err != nil {
				t.Fatal(err)
			}
			wantView := 0
			if when == "after it" {
				wantView = 2
			}
			if got := []int64{a.Days[0].Sessions, a.Days[1].Sessions}; !reflect.DeepEqual(got, c.days) ||
				a.Totals.QualifiedLeads != c.leads || a.ServedFrom.ViewDays != wantView {
				t.Errorf("%s changed, %s: days %v, %d leads, %d view days; want %v, %d, %d", c.name, when, got, a.Totals.QualifiedLeads, a.ServedFrom.ViewDays, c.days, c.leads, wantView)
			}
			refresh(t, pool)
		}
	}
}

func ptr[T any](v T) *T { return &v }
