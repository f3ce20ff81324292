package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// t0 is the injected "now" of a run: 03:15 UTC, as scheduled.
var t0 = time.Date(2026, 11, 20, 3, 15, 0, 0, time.UTC)

// clock is an injected, settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// noWait replaces the Telegram client's retry pause.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

type fixture struct {
	pool  *pgxpool.Pool
	srv   *telegramtest.Server
	clock *clock
	logs  *bytes.Buffer
	cfg   config.Auditing
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{pool: dbtest.New(t), srv: telegramtest.New(t), clock: &clock{now: t0}, logs: &bytes.Buffer{},
		cfg: config.Auditing{Window: 24 * time.Hour, ThresholdPercent: 1}}
}

// auditor is an auditor of the fixture's database (or of pool, when given:
// a second process).
func (f *fixture) auditor(t *testing.T, opts audit.Options, pool ...*pgxpool.Pool) *audit.Auditor {
	t.Helper()
	client, err := telegram.New(f.srv.Config(), telegram.Options{Wait: noWait})
	if err != nil {
		t.Fatal(err)
	}
	p := f.pool
	if len(pool) > 0 {
		p = pool[0]
	}
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	}
	return audit.New(p, client, f.cfg, opts)
}

func (f *fixture) run(t *testing.T) audit.Report {
	t.Helper()
	r, err := f.auditor(t, audit.Options{}).Run(context.Background())
	if err != nil {
		t.Fatalf("run at %s: %v", f.clock.Now(), err)
	}
	return r
}

// texts returns what a reader saw in the messages from index from on.
func (f *fixture) texts(from int) []string {
	var out []string
	for _, m := range f.srv.Messages()[from:] {
		out = append(out, m.Text)
	}
	return out
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// ids runs a query that returns one text column.
func (f *fixture) ids(t *testing.T, sql string, args ...any) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// site is a test site.
type site struct {
	id       int64
	publicID string
}

// addSite creates a site; ads and ga4 configure its conversion destinations.
func (f *fixture) addSite(t *testing.T, publicID string, ads, ga4 bool) site {
	t.Helper()
	s := site{publicID: publicID}
	err := f.pool.QueryRow(context.Background(), `
		INSERT INTO sites (public_id, name, google_ads_customer_id, google_ads_conversion_action, ga4_measurement_id, ga4_api_secret)
		VALUES ($1, 'Site ' || $1,
		        CASE WHEN $2::boolean THEN '1234567890' END, CASE WHEN $2::boolean THEN 'Qualified lead' END,
		        CASE WHEN $3::boolean THEN 'G-TEST1234' END, CASE WHEN $3::boolean THEN 'mp-secret' END)
		RETURNING id`, publicID, ads, ga4).Scan(&s.id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// visits describes n consistent sessions (counters equal to their event
// rows) that the fill helper writes.
type visits struct {
	n int
	// created is the server time of the first session; each next one is a
	// second earlier. Its events are received at the same time.
	created time.Time
	// lead: a qualified lead (a pageview, a phone click and a form, score
	// 95) from a Google ad with a unique gclid; otherwise one pageview.
	lead bool
	// convert writes the outbox rows of the site's destinations (leads).
	convert bool
	bot     bool
	// lastActive is when the first visit was last active (each next one a
	// second earlier); by default 20 s after it started, 40 s before it was
	// created.
	lastActive time.Time
	// tag distinguishes the click ids of several fills of one site.
	tag string
}

// fill writes the sessions and events of v for s and returns the session ids.
func (f *fixture) fill(t *testing.T, s site, v visits) []string {
	t.Helper()
	types := []string{"pageview"}
	if v.lead {
		types = []string{"pageview", "phone_click", "form_submit"}
	}
	lastActive := "x.t - interval '40 seconds'"
	if !v.lastActive.IsZero() {
		lastActive = fmt.Sprintf("x.t + %d * interval '1 microsecond'", v.lastActive.Sub(v.created).Microseconds())
	}
	ids := f.ids(t, `
		WITH s AS (
		    INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, active_at, created_at, updated_at,
		                          utm_source, utm_medium, gclid, traffic_source, device_type, is_bot,
		                          pageviews, event_count, phone_clicks, form_submits)
		    SELECT $1::bigint, gen_random_uuid(), x.t - interval '1 minute', `+lastActive+`, `+lastActive+`, `+lastActive+`, x.t, x.t,
		           CASE WHEN $4::boolean THEN 'google' END, CASE WHEN $4::boolean THEN 'cpc' END,
		           CASE WHEN $4::boolean THEN 'G-' || $1::bigint || '-' || $7::text || '-' || i END,
		           CASE WHEN $4::boolean THEN 'google_ads' ELSE 'direct' END, 'desktop', $5::boolean,
		           1, $6::int, CASE WHEN $4::boolean THEN 1 ELSE 0 END, CASE WHEN $4::boolean THEN 1 ELSE 0 END
		    FROM generate_series(1, $2::int) i,
		         LATERAL (SELECT $3::timestamptz - (i - 1) * interval '1 second' AS t) x
		    RETURNING site_id, id, started_at, created_at
		), e AS (
		    INSERT INTO events (site_id, id, session_id, type, occurred_at, received_at, url)
		    SELECT s.site_id, gen_random_uuid(), s.id, ty.type, s.started_at + (ty.k - 1) * interval '10 seconds', s.created_at, 'https://shop.example/'
		    FROM s, unnest($8::text[]) WITH ORDINALITY AS ty(type, k)
		)
		SELECT id::text FROM s`,
		s.id, v.n, v.created, v.lead, v.bot, len(types), v.tag, types)
	if v.convert {
		f.convertAll(t, s, ids)
	}
	return ids
}

// convertAll writes the outbox rows the ingest path would have written for
// these lead sessions: one per destination the site has configured.
func (f *fixture) convertAll(t *testing.T, s site, sessionIDs []string) {
	t.Helper()
	f.exec(t, `
		INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, value, currency, converted_at)
		SELECT x.site_id, x.id, d.destination, 'gclid', x.gclid, x.lead_score, 'USD', x.last_active_at
		FROM sessions x
		JOIN sites st ON st.id = x.site_id
		CROSS JOIN LATERAL (VALUES
		    ('google_ads', st.google_ads_customer_id IS NOT NULL),
		    ('ga4', st.ga4_measurement_id IS NOT NULL)) d(destination, configured)
		WHERE x.site_id = $1 AND x.id = ANY($2::uuid[]) AND d.configured
		ON CONFLICT (site_id, click_id, destination) DO NOTHING`, s.id, sessionIDs)
}

// eventsOf returns the event ids of these sessions.
func (f *fixture) eventsOf(t *testing.T, s site, sessionIDs []string) []string {
	t.Helper()
	return f.ids(t, `SELECT id::text FROM events WHERE site_id = $1 AND session_id = ANY($2::uuid[]) ORDER BY id`, s.id, sessionIDs)
}

// wantSamples checks that a finding's samples are real ids of the planted
// rows: up to five, all distinct, all among planted.
func wantSamples(t *testing.T, what string, got audit.SiteReport, planted []string) {
	t.Helper()
	want := min(5, len(planted))
	if len(got.Samples) != want {
		t.Errorf("%s: %d samples %v, want %d", what, len(got.Samples), got.Samples, want)
	}
	seen := map[string]bool{}
	for _, id := range got.Samples {
		if !slices.Contains(planted, id) || seen[id] {
			t.Errorf("%s: sample %s is not one of the planted rows (or repeated)", what, id)
		}
		seen[id] = true
	}
}

// storedFindings reads audit_findings of a run as "CODE/site count/denominator alarm".
func (f *fixture) storedFindings(t *testing.T, runID int64) []string {
	t.Helper()
	return f.ids(t, `
		SELECT af.code || '/' || s.public_id || ' ' || af.count || '/' || af.denominator || CASE WHEN af.alarm THEN ' alarm' ELSE '' END
		       || ' samples:' || cardinality(af.sample_ids)
		FROM audit_findings af JOIN sites s ON s.id = af.site_id
		WHERE af.run_id = $1 ORDER BY af.code, s.public_id`, runID)
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
