package stats_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// session is one row of sessions as the tests need it; the lead score is
// the table's generated column.
type session struct {
	id        uuid.UUID // zero: a new one
	site      int64
	started   time.Time
	duration  time.Duration // last_active_at - started_at
	source    string
	device    string
	pageviews int
	phone     int
	whatsapp  int
	forms     int
	engagedMs int64
	scroll    int
	returning bool
	bot       bool
}

func insertSessions(t testing.TB, pool *pgxpool.Pool, ss []session) {
	t.Helper()
	rows := make([][]any, len(ss))
	for i, s := range ss {
		source, device := s.source, s.device
		if source == "" {
			source = "direct"
		}
		if device == "" {
			device = "desktop"
		}
		end := s.started.Add(s.duration)
		id := s.id
		if id == uuid.Nil {
			id = uuid.New()
		}
		rows[i] = []any{s.site, id, s.started, end, end, source, device, s.bot, s.returning,
			int32(s.pageviews), s.engagedMs, int16(s.scroll), int32(s.phone), int32(s.whatsapp), int32(s.forms)}
	}
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{"sessions"},
		[]string{"site_id", "id", "started_at", "last_seen_at", "last_active_at", "traffic_source", "device_type", "is_bot", "is_returning",
			"pageviews", "engaged_ms", "max_scroll", "phone_clicks", "whatsapp_clicks", "form_submits"},
		pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatalf("insert sessions: %v", err)
	}
}

func addSite(t testing.TB, pool *pgxpool.Pool, publicID, timezone string) sites.Site {
	t.Helper()
	s, err := sites.Add(context.Background(), pool, sites.NewSite{PublicID: publicID, Domains: []string{publicID + ".example"}, Timezone: timezone, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func refresh(t testing.TB, pool *pgxpool.Pool) stats.Refresh {
	t.Helper()
	r, err := stats.RunRefresh(context.Background(), pool, "test")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return r
}

// refreshedAt pretends that the last successful refresh started at; the
// view's content stays what the refresh computed. (A refresh made after all
// the rows were written covers every day, so any earlier refreshed_at is
// one the view could have had.)
func refreshedAt(t testing.TB, pool *pgxpool.Pool, at time.Time) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
		UPDATE analytics_refreshes SET started_at = $1, finished_at = $1
		WHERE id = (SELECT max(id) FROM analytics_refreshes WHERE ok)`, at); err != nil {
		t.Fatal(err)
	}
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fixedClock is an injected clock.
func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// withoutServedFrom is an answer with its served_from cleared, for comparing
// what the two paths computed.
func withoutServedFrom(a stats.Answer) stats.Answer {
	a.ServedFrom = stats.ServedFrom{}
	return a
}
