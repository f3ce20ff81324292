package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ceilingScript is the pgbench transaction the ingest ceiling is measured
// with: the least SQL a 3-event batch needs, in one transaction: insert the
// events (new ids, ON CONFLICT DO NOTHING) and upsert the session row with its
// merged counters. Sessions get four batches each, like the HTTP side's
// (n counts a client's transactions). Keep the columns in step with the
// sessions table (sql/) when it changes.
const ceilingScript = `\set s :n / 4
\set n :n + 1
BEGIN;
INSERT INTO events (site_id, id, session_id, type, occurred_at, url, data)
SELECT :site::bigint, gen_random_uuid(), k.sid, e.type, now(), e.url, e.data::jsonb
FROM (SELECT md5(:salt::text || '.' || :client_id::text || '.' || :s::text)::uuid AS sid) k,
     (VALUES ('pageview', 'https://shop.example/p/1', '{"title":"Product 1"}'),
             ('heartbeat', NULL, '{"active_ms":15000,"scroll":20,"state":"active"}'),
             ('custom', 'https://shop.example/p/1', '{"name":"add_to_cart","props":{"sku":"A-1","qty":1}}')) AS e(type, url, data)
ON CONFLICT (site_id, id) DO NOTHING;
INSERT INTO sessions AS s (site_id, id, visitor_id, started_at, last_seen_at, active_at, last_active_at,
    landing_url, referrer, referrer_host, utm_source, utm_medium, utm_campaign, gclid,
    traffic_source, device_type, browser, os, language, timezone, screen_width, screen_height,
    pageviews, event_count, engaged_ms, max_scroll, custom_events)
SELECT :site::bigint, k.sid, k.sid, now(), now(), now(), now(),
    'https://shop.example/landing?gclid=Cj0KCQ', 'https://www.google.com/', 'www.google.com', 'google', 'cpc', 'brand', 'Cj0KCQ',
    'google_ads', 'desktop', 'Chrome', 'Windows', 'tr-TR', 'Europe/Istanbul', 390, 844,
    1, 2, 15000, 20, 1
FROM (SELECT md5(:salt::text || '.' || :client_id::text || '.' || :s::text)::uuid AS sid) k
ON CONFLICT (site_id, id) DO UPDATE SET
    started_at    = LEAST(s.started_at, EXCLUDED.started_at),
    last_seen_at  = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
    active_at     = GREATEST(s.active_at, EXCLUDED.active_at),
    last_active_at = GREATEST(s.last_active_at, EXCLUDED.last_active_at),
    updated_at    = now(),
    pageviews     = s.pageviews + EXCLUDED.pageviews,
    event_count   = s.event_count + EXCLUDED.event_count,
    engaged_ms    = GREATEST(s.engaged_ms, EXCLUDED.engaged_ms),
    max_scroll    = GREATEST(s.max_scroll, EXCLUDED.max_scroll),
    custom_events = s.custom_events + EXCLUDED.custom_events;
END;
`

// ceilingOptions are the pgbench run's knobs.
type ceilingOptions struct {
	clients int
	time    time.Duration
}

func addCeilingFlags(fs *flag.FlagSet) *ceilingOptions {
	o := &ceilingOptions{}
	fs.IntVar(&o.clients, "ceiling-clients", 8, "pgbench clients for the ceiling")
	fs.DurationVar(&o.time, "ceiling-time", 16*time.Second, "pgbench duration for the ceiling in all (whole seconds, split over the rounds)")
	return o
}

var pgbenchTPS = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

// ceiling is pgbench with ceilingScript against a fresh migrated database,
// run in rounds that alternate with the HTTP side's (runBench), so that
// the machine's speed, which drifts on shared cores, is the same for both.
type ceiling struct {
	bin, script, siteID string
	conn                *pgx.ConnConfig
	clients, secs       int
	drop                func()
	dir                 string
	tps                 []float64
	err                 error
}

// newCeiling prepares the database and the script; an error is kept and
// reported in place of the figures.
func newCeiling(ctx context.Context, serverURL string, o *ceilingOptions, rounds int) *ceiling {
	c := &ceiling{clients: o.clients, drop: func() {}}
	secs := int(o.time.Round(time.Second) / time.Second)
	if secs < 1 || o.clients < 1 {
		c.err = fmt.Errorf("--ceiling-time must be at least 1s and --ceiling-clients at least 1")
		return c
	}
	c.secs = max(1, (secs+rounds-1)/rounds)
	if c.bin, c.err = findPgbench(); c.err != nil {
		return c
	}
	pool, drop, err := benchDatabase(ctx, serverURL, "ceiling", 1)
	if err != nil {
		c.err = err
		return c
	}
	c.drop = drop
	var siteID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM sites WHERE public_id = 'bench'`).Scan(&siteID); err != nil {
		c.err = fmt.Errorf("bench site: %w", err)
		return c
	}
	c.siteID, c.conn = strconv.FormatInt(siteID, 10), pool.Config().ConnConfig
	pool.Close()
	if c.dir, c.err = os.MkdirTemp("", "opsmantik-ceiling-"); c.err != nil {
		return c
	}
	c.script = filepath.Join(c.dir, "ceiling.pgbench")
	c.err = os.WriteFile(c.script, []byte(ceilingScript), 0o644)
	return c
}

// round runs pgbench once (new sessions each time: a fresh salt).
func (c *ceiling) round(ctx context.Context) {
	if c.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.secs)*time.Second+time.Minute)
	defer cancel()
	threads := min(c.clients, 2)
	cmd := exec.CommandContext(ctx, c.bin, "-n", "-M", "prepared", "-c", strconv.Itoa(c.clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(c.secs), "-D", "site="+c.siteID, "-D", "n=0",
		"-D", "salt="+strconv.FormatUint(rand.Uint64()>>1, 10), "-f", c.script)
	cmd.Env = append(os.Environ(), libpqEnv(c.conn)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.err = fmt.Errorf("%s: %w\n%s", c.bin, err, tail(string(out), 1500))
		return
	}
	m := pgbenchTPS.FindStringSubmatch(string(out))
	if m == nil {
		c.err = fmt.Errorf("no tps in pgbench's output:\n%s", tail(string(out), 1500))
		return
	}
	if strings.Contains(string(out), "number of failed transactions: ") && !strings.Contains(string(out), "number of failed transactions: 0 ") {
		c.err = fmt.Errorf("pgbench transactions failed:\n%s", tail(string(out), 1500))
		return
	}
	tps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		c.err = err
		return
	}
	c.tps = append(c.tps, tps)
}

// report prints the ceiling (the mean of the rounds' rates, all rounds being
// equally long) and the HTTP side's batches per second divided by it.
func (c *ceiling) report(http benchResult) {
	if c.err == nil && len(c.tps) == 0 {
		c.err = errors.New("no round ran")
	}
	if c.err != nil {
		fmt.Printf("(d) ceiling, pgbench: not measured: %v\n", c.err)
		return
	}
	sum := 0.0
	for _, v := range c.tps {
		sum += v
	}
	tps := sum / float64(len(c.tps))
	fmt.Printf("(d) ceiling, pgbench (%d clients, %d × %ds alternating with (a) and (b), -M prepared, events + session upsert in one transaction): %.0f tx/s\n",
		c.clients, len(c.tps), c.secs, tps)
	fmt.Printf("ratio a/d: %.2f (target ≥ 0.75)\n", http.perSecond()/tps)
}

func (c *ceiling) close() {
	c.drop()
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

// libpqEnv points pgbench (libpq) at the database conn describes; pgx's own
// URL parameters mean nothing to libpq.
func libpqEnv(c *pgx.ConnConfig) []string {
	env := []string{"PGHOST=" + c.Host, "PGPORT=" + strconv.Itoa(int(c.Port)), "PGUSER=" + c.User, "PGDATABASE=" + c.Database,
		"PGSSLMODE=disable", "PGAPPNAME=opsmantik-bench-ceiling"}
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	if c.TLSConfig != nil {
		env[4] = "PGSSLMODE=require"
	}
	return env
}

func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(m) > 0 {
		return m[len(m)-1], nil
	}
	return "", errors.New("pgbench not found (Debian: apt-get install postgresql-client)")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// sessionUpdates are the sessions table's update counters.
type sessionUpdates struct{ updates, hot int64 }

// readSessionUpdates reads n_tup_upd and n_tup_hot_upd of sessions, first
// making every idle connection of pool flush its pending statistics
// (pg_stat_force_next_flush, PostgreSQL 15) so that the figures include what
// those connections just did. Call it while nothing else uses pool.
func readSessionUpdates(ctx context.Context, pool *pgxpool.Pool) (sessionUpdates, error) {
	for _, c := range pool.AcquireAllIdle(ctx) {
		_, err := c.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		c.Release()
		if err != nil {
			return sessionUpdates{}, fmt.Errorf("flush statistics: %w", err)
		}
	}
	var u sessionUpdates
	err := pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sessions'`).Scan(&u.updates, &u.hot)
	if err != nil {
		return sessionUpdates{}, fmt.Errorf("read sessions statistics: %w", err)
	}
	return u, nil
}

// reportHOT prints the share of the run's session updates that were HOT
// (heap-only: no index entry written), from counters read before and after.
func reportHOT(ctx context.Context, pool *pgxpool.Pool, before sessionUpdates, beforeErr error) {
	after, err := readSessionUpdates(ctx, pool)
	if err = errors.Join(beforeErr, err); err != nil {
		fmt.Printf("HOT session updates (HTTP side): not measured: %v\n", err)
		return
	}
	upd, hot := after.updates-before.updates, after.hot-before.hot
	share := 0.0
	if upd > 0 {
		share = float64(hot) / float64(upd)
	}
	fmt.Printf("HOT session updates (HTTP side): before the run %d of %d, after %d of %d: %d of %d updates HOT, share %.2f (target ≥ 0.9)\n",
		before.hot, before.updates, after.hot, after.updates, hot, upd, share)
}
