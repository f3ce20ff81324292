package watchtower_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-envconfig"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// t0 is the injected "now" the tests start from.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

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

// defaults is the alerting configuration with every default.
func defaults(t *testing.T) config.Alerting {
	t.Helper()
	var cfg config.Alerting
	if err := config.LoadFrom(context.Background(), envconfig.MapLookuper(nil), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// noWait replaces the client's retry pause.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func client(t *testing.T, srv *telegramtest.Server) *telegram.Client {
	t.Helper()
	c, err := telegram.New(srv.Config(), telegram.Options{Wait: noWait})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type fixture struct {
	cfg   config.Alerting
	pool  *pgxpool.Pool
	srv   *telegramtest.Server
	clock *clock
	logs  *bytes.Buffer
	w     *watchtower.Watchtower
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{pool: dbtest.New(t), srv: telegramtest.New(t), clock: &clock{now: t0}, logs: &bytes.Buffer{}}
	f.cfg = defaults(t)
	// These tests skip hours between runs; a skipped run is not an outage
	// here (WT000's gaps have tests of their own, runs_test.go).
	f.cfg.Interval = 24 * time.Hour
	f.w = f.watchtower(t, f.pool)
	return f
}

func (f *fixture) watchtower(t *testing.T, pool *pgxpool.Pool, checks ...watchtower.Check) *watchtower.Watchtower {
	return watchtower.New(pool, client(t, f.srv), f.cfg, watchtower.Options{
		Now: f.clock.Now, Logger: f.watchtowerLogger(), Checks: checks,
	})
}

// watchtowerLogger writes JSON lines into f.logs.
func (f *fixture) watchtowerLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(f.logs, nil)) }

func (f *fixture) run(t *testing.T) watchtower.Report {
	t.Helper()
	r, err := f.w.Run(context.Background())
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

func alertOf(r watchtower.Report, code string) watchtower.CheckReport {
	for _, c := range r.Checks {
		if c.Code == code {
			return c
		}
	}
	return watchtower.CheckReport{}
}

type session struct {
	startedAgo, seenAgo time.Duration
	gclid, wbraid       string
	bot                 bool
}

// watchtowerDB is a pool or a transaction.
type watchtowerDB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// insertSessions writes sessions relative to now into db (a pool or a tx).
func insertSessions(t *testing.T, db watchtowerDB, now time.Time, sessions ...session) {
	t.Helper()
	ctx := context.Background()
	var site int64
	err := db.QueryRow(ctx, `
		INSERT INTO sites (public_id) VALUES ('s' || floor(random() * 1e9)::bigint) RETURNING id`).Scan(&site)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		source := "direct"
		if s.gclid != "" || s.wbraid != "" {
			source = "google_ads"
		}
		_, err := db.Exec(ctx, `
			INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, gclid, wbraid, is_bot, traffic_source, device_type)
			VALUES ($1, $2, $3, $4, $4, nullif($5, ''), nullif($6, ''), $7, $8, 'desktop')`,
			site, uuid.New(), now.Add(-s.startedAgo), now.Add(-s.seenAgo), s.gclid, s.wbraid, s.bot, source)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// counters is one ingest_counters row: the server part of the error rate.
type counters struct {
	ago              time.Duration
	shard            int
	requests, server int64
}

func insertCounters(t *testing.T, db watchtowerDB, now time.Time, rows ...counters) {
	t.Helper()
	for _, c := range rows {
		_, err := db.Exec(context.Background(), `
			INSERT INTO ingest_counters (bucket, shard, requests, server_failures)
			VALUES (date_trunc('minute', $1::timestamptz), $2, $3, $4)`,
			now.Add(-c.ago), c.shard, c.requests, c.server)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// clientFailures is one ingest_client_failures row: what one client (a
// hash of its IP address) reported in one minute.
type clientFailures struct {
	ago      time.Duration
	client   string
	failures int64
}

func insertClientFailures(t *testing.T, db watchtowerDB, now time.Time, rows ...clientFailures) {
	t.Helper()
	for _, c := range rows {
		_, err := db.Exec(context.Background(), `
			INSERT INTO ingest_client_failures (bucket, client, failures)
			VALUES (date_trunc('minute', $1::timestamptz), $2, $3)
			ON CONFLICT (bucket, client) DO UPDATE SET failures = ingest_client_failures.failures + EXCLUDED.failures`,
			now.Add(-c.ago), c.client, c.failures)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// addSite creates a site for the per-site checks.
func addSite(t *testing.T, db watchtowerDB, publicID, name, tz string) watchtower.Site {
	t.Helper()
	s := watchtower.Site{PublicID: publicID, Name: name}
	err := db.QueryRow(context.Background(), `
		INSERT INTO sites (public_id, name, timezone) VALUES ($1, $2, $3) RETURNING id`, publicID, name, tz).Scan(&s.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// siteSessions are n sessions of one site that started at one time.
type siteSessions struct {
	at      time.Time
	n       int
	clickID bool
	bot     bool
}

func insertSiteSessions(t *testing.T, db watchtowerDB, site watchtower.Site, rows ...siteSessions) {
	t.Helper()
	for _, r := range rows {
		source, gclid := "direct", ""
		if r.clickID {
			source, gclid = "google_ads", "Cj0KCQ"
		}
		_, err := db.Exec(context.Background(), `
			INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, gclid, is_bot, traffic_source, device_type)
			SELECT $1, gen_random_uuid(), $2, $2, $2, nullif($3, ''), $4, $5, 'desktop' FROM generate_series(1, $6::int)`,
			site.ID, r.at, gclid, r.bot, source, r.n)
		if err != nil {
			t.Fatal(err)
		}
	}
}
