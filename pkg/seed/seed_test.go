package seed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var testNow = time.Date(2026, 11, 10, 15, 4, 5, 678_000_000, time.UTC)

func addSite(t *testing.T, pool *pgxpool.Pool, publicID, zone string) sites.Site {
	t.Helper()
	s, err := sites.Add(context.Background(), pool, sites.NewSite{PublicID: publicID, Domains: []string{"shop.example"}, Timezone: zone})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t *testing.T, pool *pgxpool.Pool, o Options) Summary {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = testNow
	}
	sum, err := Run(context.Background(), pool, o)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// count runs a query that returns one number.
func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// digest is every row of both tables, every column included, as one hash.
func digest(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var sessions, events string
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT count(*) || ':' || md5(string_agg(s::text, '|' ORDER BY site_id, id)) FROM sessions s`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) || ':' || md5(string_agg(e::text, '|' ORDER BY site_id, id)) FROM events e`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	return sessions + " " + events
}

func TestRunIsDeterministicForASeed(t *testing.T) {
	var digests []string
	for _, o := range []Options{
		{Seed: 42},
		{Seed: 42, Chunk: 97, Writers: 3}, // chunking and parallel writers change nothing
		{Seed: 43},
	} {
		pool := dbtest.New(t)
		addSite(t, pool, "demo", "Europe/Istanbul")
		o.PublicID, o.Sessions, o.Days = "demo", 3000, 14
		run(t, pool, o)
		digests = append(digests, digest(t, pool))
	}
	if digests[0] != digests[1] {
		t.Errorf("the same seed gave different rows:\n%s\n%s", digests[0], digests[1])
	}
	if digests[0] == digests[2] {
		t.Errorf("seeds 42 and 43 gave the same rows")
	}
}

// The rules every seeded row keeps: the schema's constraints (COPY would
// fail otherwise), the counters the integrity audit compares with the event
// rows, returning visitors, PROTOCOL.md's session times, days in the site's
// zone, bots.
func TestRunRowsKeepTheRules(t *testing.T) {
	pool := dbtest.New(t)
	site := addSite(t, pool, "ny", "America/New_York") // the range holds the end of DST (1 November)
	const sessions, days = 20_000, 14
	sum := run(t, pool, Options{PublicID: "ny", Sessions: sessions, Days: days, Seed: 7, Chunk: 3000})
	if sum.SiteID != site.ID || sum.Sessions != sessions || sum.From != "2026-10-28" || sum.To != "2026-11-10" {
		t.Fatalf("summary %+v", sum)
	}
	if got := count(t, pool, `SELECT count(*) FROM sessions WHERE site_id = $1`, site.ID); got != sessions {
		t.Fatalf("%d sessions stored, want %d", got, sessions)
	}
	if got := count(t, pool, `SELECT count(*) FROM events WHERE site_id = $1`, site.ID); got != sum.Events || sum.Rows != sum.Sessions+sum.Events {
		t.Fatalf("%d events stored, summary says %d (rows %d)", got, sum.Events, sum.Rows)
	}

	zero := []struct{ name, sql string }{
		{"sessions whose counters differ from their event rows", `
			SELECT count(*) FROM sessions s LEFT JOIN LATERAL (
			    SELECT count(*) AS all_events,
			           count(*) FILTER (WHERE type = 'pageview') AS pv,
			           count(*) FILTER (WHERE type = 'phone_click') AS phone,
			           count(*) FILTER (WHERE type = 'whatsapp_click') AS wa,
			           count(*) FILTER (WHERE type = 'form_submit') AS forms,
			           count(*) FILTER (WHERE type = 'custom') AS custom
			    FROM events e WHERE e.site_id = s.site_id AND e.session_id = s.id) c ON true
			WHERE (s.event_count, s.pageviews, s.phone_clicks, s.whatsapp_clicks, s.form_submits, s.custom_events)
			   IS DISTINCT FROM (c.all_events, c.pv, c.phone, c.wa, c.forms, c.custom)`},
		{"events without a session", `
			SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.site_id = e.site_id AND s.id = e.session_id)`},
		{"events of an unknown type", `SELECT count(*) FROM events WHERE type NOT IN ('pageview', 'phone_click', 'whatsapp_click', 'form_submit', 'custom')`},
		{"sessions with a wrong is_returning", `
			SELECT count(*) FROM sessions s
			WHERE s.is_returning IS DISTINCT FROM (s.visitor_id IS NOT NULL AND EXISTS (
			    SELECT 1 FROM sessions p WHERE p.site_id = s.site_id AND p.visitor_id = s.visitor_id AND p.started_at < s.started_at))`},
		{"sessions without a pageview", `SELECT count(*) FROM sessions WHERE pageviews < 1`},
		{"sessions whose times are out of order", `
			SELECT count(*) FROM sessions
			WHERE NOT (started_at <= last_active_at AND last_active_at <= last_seen_at AND last_seen_at <= $1
			           AND created_at >= started_at AND created_at <= updated_at AND updated_at <= $1)`},
		{"events outside their session's active time", `
			SELECT count(*) FROM events e JOIN sessions s ON s.site_id = e.site_id AND s.id = e.session_id
			WHERE e.occurred_at < s.started_at OR e.occurred_at > s.last_active_at
			   OR e.received_at < e.occurred_at OR e.received_at > $1`},
		{"sessions whose first event is not at started_at", `
			SELECT count(*) FROM sessions s
			WHERE s.started_at <> (SELECT min(occurred_at) FROM events e WHERE e.site_id = s.site_id AND e.session_id = s.id)`},
		{"sessions outside the site-local days", `
			SELECT count(*) FROM sessions
			WHERE (started_at AT TIME ZONE 'America/New_York')::date NOT BETWEEN '2026-10-28' AND '2026-11-10'`},
		{"sessions engaged longer than they were seen", `
			SELECT count(*) FROM sessions WHERE engaged_ms > extract(epoch FROM last_seen_at - started_at) * 1000 OR engaged_ms < 0 OR max_scroll NOT BETWEEN 0 AND 100`},
		{"bots with a lead score, a conversion, a visitor or engagement", `
			SELECT count(*) FROM sessions
			WHERE is_bot AND (lead_score <> 0 OR phone_clicks + whatsapp_clicks + form_submits > 0 OR visitor_id IS NOT NULL OR is_returning OR engaged_ms > 0)`},
		{"Google Ads sessions without exactly one click id, or others with one", `
			SELECT count(*) FROM sessions
			WHERE (traffic_source = 'google_ads') <> (num_nonnulls(gclid, wbraid, gbraid) = 1)
			   OR num_nonnulls(gclid, wbraid, gbraid) > 1`},
		{"click ids missing from the landing URL", `
			SELECT count(*) FROM sessions WHERE coalesce(gclid, wbraid, gbraid) IS NOT NULL AND strpos(landing_url, coalesce(gclid, wbraid, gbraid)) = 0`},
		{"referrer hosts that do not match the referrer", `
			SELECT count(*) FROM sessions WHERE (referrer IS NULL) <> (referrer_host IS NULL) OR strpos(referrer, referrer_host) = 0`},
		{"event data not shaped as the ingest path writes it", `
			SELECT count(*) FROM events
			WHERE jsonb_typeof(data) <> 'object'
			   OR (type = 'pageview' AND NOT (data ? 'title' AND (SELECT count(*) FROM jsonb_object_keys(data)) = 1 AND jsonb_typeof(data->'title') = 'string'))
			   OR (type IN ('phone_click', 'whatsapp_click') AND NOT (data ? 'target' AND (SELECT count(*) FROM jsonb_object_keys(data)) = 1))
			   OR (type = 'form_submit' AND NOT (data ? 'form' AND (SELECT count(*) FROM jsonb_object_keys(data)) = 1))
			   OR (type = 'custom' AND NOT (jsonb_typeof(data->'name') = 'string' AND length(data->>'name') BETWEEN 1 AND 64
			                                AND (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(data) k) <@ ARRAY['name', 'props']
			                                AND (NOT data ? 'props' OR (jsonb_typeof(data->'props') = 'object'
			                                     AND NOT EXISTS (SELECT 1 FROM jsonb_each(data->'props') p WHERE jsonb_typeof(p.value) NOT IN ('string', 'number', 'boolean'))))))`},
		{"first pageviews not on the landing URL", `
			SELECT count(*) FROM sessions s
			WHERE s.landing_url <> (SELECT url FROM events e WHERE e.site_id = s.site_id AND e.session_id = s.id ORDER BY occurred_at, type <> 'pageview' LIMIT 1)`},
	}
	for _, q := range zero {
		var args []any
		if strings.Contains(q.sql, "$1") {
			args = append(args, testNow)
		}
		if n := count(t, pool, q.sql, args...); n != 0 {
			t.Errorf("%d %s", n, q.name)
		}
	}

	// Realistic shares (fixed for this seed; the bounds are loose).
	share := func(cond string) float64 {
		return float64(count(t, pool, `SELECT count(*) FROM sessions WHERE `+cond)) / sessions
	}
	human := `NOT is_bot AND `
	checks := []struct {
		name     string
		cond     string
		min, max float64
	}{
		{"bots", `is_bot`, 0.01, 0.06},
		{"returning visitors", human + `is_returning`, 0.10, 0.35},
		{"sessions without a visitor id", human + `visitor_id IS NULL`, 0.005, 0.08},
		{"bounced sessions", human + `extract(epoch FROM last_active_at - started_at) < 10 AND pageviews < 2 AND phone_clicks + whatsapp_clicks + form_submits = 0`, 0.2, 0.6},
		{"converted sessions", human + `phone_clicks + whatsapp_clicks + form_submits > 0`, 0.05, 0.35},
		{"qualified leads", human + `lead_score > 80`, 0.002, 0.15},
		{"tabs left open", human + `last_seen_at - last_active_at > interval '2 minutes'`, 0.02, 0.3},
		{"corrected client clocks", `clock_skew_ms <> 0`, 0.001, 0.05},
	}
	for _, source := range []string{"google_ads", "paid", "organic_search", "social", "referral", "direct"} {
		checks = append(checks, struct {
			name     string
			cond     string
			min, max float64
		}{source, fmt.Sprintf(`traffic_source = '%s'`, source), 0.02, 0.4})
	}
	for _, device := range []string{"mobile", "desktop", "tablet"} {
		checks = append(checks, struct {
			name     string
			cond     string
			min, max float64
		}{device, human + fmt.Sprintf(`device_type = '%s'`, device), 0.03, 0.8})
	}
	for _, id := range []string{"gclid", "wbraid", "gbraid"} {
		checks = append(checks, struct {
			name     string
			cond     string
			min, max float64
		}{id, id + ` IS NOT NULL`, 0.001, 0.3})
	}
	for _, c := range checks {
		if s := share(c.cond); s < c.min || s > c.max {
			t.Errorf("%s: %.4f of sessions, want %.3f to %.3f", c.name, s, c.min, c.max)
		}
	}
	for _, typ := range []string{"pageview", "phone_click", "whatsapp_click", "form_submit", "custom"} {
		if n := count(t, pool, `SELECT count(*) FROM events WHERE type = $1`, typ); n == 0 {
			t.Errorf("no %s events", typ)
		}
	}
	// Every local day has sessions, the day DST ended included, and the
	// evening is busier than the night.
	if n := count(t, pool, `SELECT count(DISTINCT (started_at AT TIME ZONE 'America/New_York')::date) FROM sessions`); n != days {
		t.Errorf("sessions on %d local days, want %d", n, days)
	}
	night := count(t, pool, `SELECT count(*) FROM sessions WHERE extract(hour FROM started_at AT TIME ZONE 'America/New_York') = 4`)
	evening := count(t, pool, `SELECT count(*) FROM sessions WHERE extract(hour FROM started_at AT TIME ZONE 'America/New_York') = 20`)
	if night*4 > evening {
		t.Errorf("%d sessions at 04:00 local and %d at 20:00: want a daily rhythm", night, evening)
	}
}

func TestRunUnknownSiteIsAClearError(t *testing.T) {
	pool := dbtest.New(t)
	for _, o := range []Options{{PublicID: "nope"}, {SiteID: 999}} {
		o.Sessions, o.Days = 10, 1
		_, err := Run(context.Background(), pool, o)
		if !errors.Is(err, ErrUnknownSite) {
			t.Fatalf("%+v: error %v, want ErrUnknownSite", o, err)
		}
		t.Log(err)
	}
	_, err := Run(context.Background(), pool, Options{PublicID: "nope", Sessions: 1, Days: 1})
	if want := "unknown site \"nope\": create it first with `opsmantik site add --public-id nope"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM sessions`); n != 0 {
		t.Errorf("%d sessions written for an unknown site", n)
	}
}

func TestRunBySiteID(t *testing.T) {
	pool := dbtest.New(t)
	addSite(t, pool, "first", "UTC")
	second := addSite(t, pool, "second", "Asia/Tokyo")
	sum := run(t, pool, Options{SiteID: second.ID, Sessions: 50, Days: 2, Seed: 1})
	if sum.PublicID != "second" || sum.Timezone != "Asia/Tokyo" {
		t.Fatalf("summary %+v, want site second", sum)
	}
	if n := count(t, pool, `SELECT count(*) FROM sessions WHERE site_id = $1`, second.ID); n != 50 {
		t.Fatalf("%d sessions for site second, want 50", n)
	}
}

func TestValidateLimits(t *testing.T) {
	ok := Options{PublicID: "demo", Sessions: 1, Days: 1}
	cases := []struct {
		name   string
		change func(*Options)
		want   string // "" when valid
	}{
		{"smallest", func(o *Options) {}, ""},
		{"largest", func(o *Options) { o.Sessions, o.Days = MaxSessions, MaxDays }, ""},
		{"by site id", func(o *Options) { o.PublicID, o.SiteID = "", 3 }, ""},
		{"no site", func(o *Options) { o.PublicID = " " }, "site: required"},
		{"no sessions", func(o *Options) { o.Sessions = 0 }, "sessions: must be between 1 and 100000000, got 0"},
		{"negative sessions", func(o *Options) { o.Sessions = -5 }, "sessions: must be between 1 and 100000000, got -5"},
		{"too many sessions", func(o *Options) { o.Sessions = MaxSessions + 1 }, "sessions: must be between 1 and 100000000, got 100000001"},
		{"no days", func(o *Options) { o.Days = 0 }, "days: must be between 1 and 3650, got 0"},
		{"negative days", func(o *Options) { o.Days = -1 }, "days: must be between 1 and 3650, got -1"},
		{"too many days", func(o *Options) { o.Days = MaxDays + 1 }, "days: must be between 1 and 3650, got 3651"},
		{"negative chunk", func(o *Options) { o.Chunk = -1 }, "chunk: must not be negative"},
		{"negative writers", func(o *Options) { o.Writers = -1 }, "writers: must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.change(&o)
			err := o.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	// Run refuses them before touching the database.
	if _, err := Run(context.Background(), nil, Options{PublicID: "demo", Sessions: 0, Days: 1}); err == nil {
		t.Fatal("Run accepted 0 sessions")
	}
}

func TestRunRefusesADayWithNoTimeYet(t *testing.T) {
	pool := dbtest.New(t)
	addSite(t, pool, "utc", "UTC")
	_, err := Run(context.Background(), pool, Options{PublicID: "utc", Sessions: 5, Days: 1, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err == nil || !strings.Contains(err.Error(), "no time of 2026-01-01 has passed") {
		t.Fatalf("error %v, want one that says no time of the day has passed", err)
	}
}

func TestRunTheSameSeedTwiceIsAClearError(t *testing.T) {
	pool := dbtest.New(t)
	addSite(t, pool, "demo", "UTC")
	o := Options{PublicID: "demo", Sessions: 100, Days: 2, Seed: 5, Now: testNow}
	run(t, pool, o)
	sum, err := Run(context.Background(), pool, o)
	if err == nil || !strings.Contains(err.Error(), "already holds rows made with this seed") || !strings.Contains(err.Error(), "0 of 100 sessions written") {
		t.Fatalf("error %v, want a clear duplicate-seed error", err)
	}
	if sum.Sessions != 0 {
		t.Errorf("summary counts %d sessions written", sum.Sessions)
	}
	if n := count(t, pool, `SELECT count(*) FROM sessions`); n != 100 {
		t.Errorf("%d sessions after the refused run, want the first run's 100", n)
	}
}

func TestRunRefreshesTheDailyViewWhenItExists(t *testing.T) {
	pool := dbtest.New(t)
	addSite(t, pool, "demo", "UTC")
	ctx := context.Background()
	sum := run(t, pool, Options{PublicID: "demo", Sessions: 20, Days: 3, Seed: 1})
	if !sum.Refreshed || !strings.Contains(sum.RefreshLine(), "refreshed the daily view") {
		t.Fatalf("refreshed %v, %q", sum.Refreshed, sum.RefreshLine())
	}
	var trigger string
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT trigger, ok FROM analytics_refreshes ORDER BY id DESC LIMIT 1`).Scan(&trigger, &ok); err != nil {
		t.Fatal(err)
	}
	if trigger != RefreshTrigger || !ok {
		t.Fatalf("last refresh: trigger %q ok %v, want %q and true", trigger, ok, RefreshTrigger)
	}
	// The view holds what was seeded: every non-bot session.
	if v, live := count(t, pool, `SELECT coalesce(sum(total_sessions), 0) FROM mv_daily_analytics_summary`),
		count(t, pool, `SELECT count(*) FROM sessions WHERE NOT is_bot`); v != live || v == 0 {
		t.Fatalf("view %d sessions, live %d", v, live)
	}
	before := count(t, pool, `SELECT count(*) FROM analytics_refreshes`)
	run(t, pool, Options{PublicID: "demo", Sessions: 5, Days: 1, Seed: 3, SkipRefresh: true})
	if n := count(t, pool, `SELECT count(*) FROM analytics_refreshes`); n != before {
		t.Errorf("%d refreshes after a run with SkipRefresh, want still %d", n, before)
	}
}

func TestRunReportsProgressInPlainLines(t *testing.T) {
	pool := dbtest.New(t)
	addSite(t, pool, "demo", "UTC")
	var out bytes.Buffer
	run(t, pool, Options{PublicID: "demo", Sessions: 1000, Days: 3, Seed: 1, Chunk: 50, Writers: 1, Progress: &out})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	line := regexp.MustCompile(`^seed: (\d+)/1000 sessions \((\d+)%\), \d+ rows, \d+ rows/s, \d+\.\ds$`)
	if len(lines) != 10 {
		t.Fatalf("%d progress lines, want one per tenth:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil || m[1] != fmt.Sprint((i+1)*100) || m[2] != fmt.Sprint((i+1)*10) {
			t.Fatalf("line %d %q, want %d sessions (%d%%)", i, l, (i+1)*100, (i+1)*10)
		}
	}
}

func TestProgressBarOnATerminal(t *testing.T) {
	var out bytes.Buffer
	p := newProgressFor(&out, 1000, true)
	p.update(1000, 3500, time.Second)
	p.done(true)
	if s := out.String(); !strings.Contains(s, "1000/1000") || !strings.Contains(s, "sessions") || !strings.Contains(s, "3500 rows") || strings.Contains(s, "seed: ") {
		t.Fatalf("bar output %q", s)
	}
	// Not a terminal: newProgress picks plain lines for anything but a tty.
	if newProgress(&out, 10).bar != nil {
		t.Fatal("a buffer got a progress bar")
	}
}

func TestBenchReportsRowsPerSecond(t *testing.T) {
	pool := dbtest.New(t)
	addSite(t, pool, "bench", "UTC")
	sum, err := Bench(context.Background(), pool, "bench", 2000, 3)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sessions != 2000 || sum.Rows != sum.Sessions+sum.Events || sum.RowsPerSecond <= 0 || sum.Seed != BenchSeed {
		t.Fatalf("summary %+v", sum)
	}
	if s := sum.String(); !regexp.MustCompile(`^seeded 2000 sessions and \d+ events \(\d+ rows\) for site bench .* in \d+\.\d\ds: \d+ rows/s`).MatchString(s) {
		t.Fatalf("summary line %q", s)
	}
}
