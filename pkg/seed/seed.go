// Package seed fills a site with realistic history: sessions spread over the
// last days of the site's own calendar (a daily and weekly rhythm), from
// every traffic source (Google Ads with gclid / wbraid / gbraid, other paid,
// organic search, social, referral, direct), on phones, desktops and tablets,
// with bounces, long reads, conversions (phone, WhatsApp, forms), custom
// events, returning visitors and a few percent of bots, and every session's
// non-heartbeat events.
//
// Rows are what the ingest path would have stored for the same visits
// (sql/0001..0003, pkg/ingest): traffic source and device come from ingest's
// own classifiers, event data has ingest's shapes, every counter equals its
// session's event rows, is_returning is true exactly when the visitor has an
// earlier session, and lead_score is left to its generated column.
//
// Run streams chunks of sessions through PostgreSQL's COPY (pgx CopyFrom, one
// transaction per chunk, so counters and events are never seen apart), with
// memory bounded by the chunk size whatever the number of sessions. For a
// seed, a site and a clock the rows are always the same.
package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// Limits of a run.
const (
	MaxSessions = 100_000_000
	MaxDays     = 3650
	// DefaultChunk is the number of sessions per COPY transaction.
	DefaultChunk = 10_000
	// DefaultWriters is the number of COPY transactions in flight.
	DefaultWriters = 2
)

// RefreshTrigger is how a seed's refresh of the daily view is recorded.
const RefreshTrigger = "seed"

// ErrUnknownSite is returned when the site to seed does not exist.
var ErrUnknownSite = errors.New("unknown site")

// Options says what to seed.
type Options struct {
	// The site, by database id or, when SiteID is 0, by public id.
	SiteID   int64
	PublicID string
	// Sessions to write, 1 to MaxSessions.
	Sessions int64
	// Days is how many site-local days the sessions are spread over, ending
	// with today (up to Now), 1 to MaxDays.
	Days int
	// Seed makes the rows reproducible: the same seed, site and Now give the
	// same rows.
	Seed uint64
	// Now is the end of the range; time.Now when zero. Truncated to milliseconds.
	Now time.Time
	// Progress receives a progress bar when it is a terminal and plain lines
	// otherwise; nil for none.
	Progress io.Writer
	// Chunk is the number of sessions per COPY transaction; DefaultChunk when 0.
	Chunk int
	// Writers is the number of chunks copied at once, each on its own
	// connection; DefaultWriters when 0.
	Writers int
	// SkipRefresh leaves the daily view alone.
	SkipRefresh bool
}

// Validate checks the limits.
func (o Options) Validate() error {
	var errs []error
	if o.SiteID == 0 && strings.TrimSpace(o.PublicID) == "" {
		errs = append(errs, errors.New("site: required (the site's public id)"))
	}
	if o.Sessions < 1 || o.Sessions > MaxSessions {
		errs = append(errs, fmt.Errorf("sessions: must be between 1 and %d, got %d", MaxSessions, o.Sessions))
	}
	if o.Days < 1 || o.Days > MaxDays {
		errs = append(errs, fmt.Errorf("days: must be between 1 and %d, got %d", MaxDays, o.Days))
	}
	if o.Chunk < 0 {
		errs = append(errs, fmt.Errorf("chunk: must not be negative, got %d", o.Chunk))
	}
	if o.Writers < 0 {
		errs = append(errs, fmt.Errorf("writers: must not be negative, got %d", o.Writers))
	}
	return errors.Join(errs...)
}

// Summary is what a run wrote.
type Summary struct {
	SiteID   int64
	PublicID string
	Timezone string
	// From and To are the site-local dates of the range (YYYY-MM-DD).
	From, To string
	Seed     uint64
	Now      time.Time

	Sessions int64
	Events   int64
	// Rows is Sessions + Events.
	Rows int64
	// Elapsed is the time spent generating and writing rows.
	Elapsed       time.Duration
	RowsPerSecond float64

	// Refreshed is true when the daily view was refreshed after writing;
	// false when the database has no refresh_daily_analytics yet (or
	// SkipRefresh was set).
	Refreshed      bool
	RefreshElapsed time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("seeded %d sessions and %d events (%d rows) for site %s (%s, %s..%s) in %.2fs: %.0f rows/s (seed %d, now %s)",
		s.Sessions, s.Events, s.Rows, s.PublicID, s.Timezone, s.From, s.To, s.Elapsed.Seconds(), s.RowsPerSecond,
		s.Seed, s.Now.UTC().Format(time.RFC3339Nano))
}

// RefreshLine says what became of the daily view.
func (s Summary) RefreshLine() string {
	if s.Refreshed {
		return fmt.Sprintf("refreshed the daily view (refresh_daily_analytics('%s')) in %.2fs", RefreshTrigger, s.RefreshElapsed.Seconds())
	}
	return "no daily view to refresh yet: this database has no refresh_daily_analytics(text)"
}

// siteSQL finds the site by id or public id.
const siteSQL = `
SELECT id, public_id, name, COALESCE(domains[1], ''), timezone
FROM sites
WHERE CASE WHEN $1::bigint <> 0 THEN id = $1::bigint ELSE public_id = $2::text END`

// lookUpSite finds the site to seed and its time zone.
func lookUpSite(ctx context.Context, pool *pgxpool.Pool, o Options) (siteInfo, *time.Location, error) {
	var site siteInfo
	err := pool.QueryRow(ctx, siteSQL, o.SiteID, o.PublicID).Scan(&site.id, &site.publicID, &site.name, &site.domain, &site.timezone)
	if errors.Is(err, pgx.ErrNoRows) {
		if o.SiteID != 0 {
			return site, nil, fmt.Errorf("%w: no site has id %d", ErrUnknownSite, o.SiteID)
		}
		return site, nil, fmt.Errorf("%w %q: create it first with `opsmantik site add --public-id %s --domain …`", ErrUnknownSite, o.PublicID, o.PublicID)
	}
	if err != nil {
		return site, nil, fmt.Errorf("look up site: %w", err)
	}
	if site.domain == "" {
		site.domain = strings.ToLower(strings.ReplaceAll(site.publicID, "_", "-")) + ".example"
	}
	loc, err := time.LoadLocation(site.timezone)
	if err != nil {
		return site, nil, fmt.Errorf("site %s: time zone %q: %w", site.publicID, site.timezone, err)
	}
	return site, loc, nil
}

// Run writes o.Sessions sessions and their events, then refreshes the daily
// view when the database has one. On an error after some chunks were
// committed, the Summary counts what was written.
func Run(ctx context.Context, pool *pgxpool.Pool, o Options) (Summary, error) {
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	if o.Chunk == 0 {
		o.Chunk = DefaultChunk
	}
	if o.Writers == 0 {
		o.Writers = DefaultWriters
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.Truncate(time.Millisecond)
	site, loc, err := lookUpSite(ctx, pool, o)
	if err != nil {
		return Summary{}, err
	}
	local := o.Now.In(loc)
	sum := Summary{
		SiteID: site.id, PublicID: site.publicID, Timezone: site.timezone, Seed: o.Seed, Now: o.Now,
		From: local.AddDate(0, 0, -(o.Days - 1)).Format(time.DateOnly), To: local.Format(time.DateOnly),
	}
	g := newGenerator(o.Seed, site, loc, o.Now, o.Days, o.Sessions)
	if g.clock.left == 0 {
		return sum, fmt.Errorf("no time of %s has passed at %s in %s: seed more than one day", sum.To, o.Now.Format(time.RFC3339), site.timezone)
	}

	prog := newProgress(o.Progress, o.Sessions)
	start := time.Now()
	err = write(ctx, pool, g, o, func(c *chunk) {
		sum.Sessions += int64(len(c.sessions))
		sum.Events += int64(len(c.events))
		sum.Rows = sum.Sessions + sum.Events
		prog.update(sum.Sessions, sum.Rows, time.Since(start))
	})
	sum.Elapsed = time.Since(start)
	if s := sum.Elapsed.Seconds(); s > 0 {
		sum.RowsPerSecond = float64(sum.Rows) / s
	}
	prog.done(err == nil)
	if err != nil {
		return sum, fmt.Errorf("seed site %s (%d of %d sessions written): %w", site.publicID, sum.Sessions, o.Sessions, err)
	}
	if o.SkipRefresh {
		return sum, nil
	}
	t0 := time.Now()
	sum.Refreshed, err = Refresh(ctx, pool)
	sum.RefreshElapsed = time.Since(t0)
	if err != nil {
		return sum, fmt.Errorf("seed site %s: rows written, but %w", site.publicID, err)
	}
	return sum, nil
}

// write generates chunks in one goroutine while writers copy them, each on
// its own connection, so generating and writing overlap; at most
// 2·writers+1 chunks are in memory.
func write(ctx context.Context, pool *pgxpool.Pool, g *generator, o Options, written func(*chunk)) error {
	grp, ctx := errgroup.WithContext(ctx)
	chunks := make(chan *chunk, o.Writers)
	grp.Go(func() error {
		defer close(chunks)
		for more := true; more; {
			c := &chunk{sessions: make([]session, 0, o.Chunk), events: make([]event, 0, 3*o.Chunk)}
			more = g.fill(c, o.Chunk)
			if len(c.sessions) == 0 {
				return nil
			}
			select {
			case chunks <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	var mu sync.Mutex
	for range o.Writers {
		grp.Go(func() error {
			for c := range chunks {
				if err := copyChunk(ctx, pool, g.siteID, c); err != nil {
					return err
				}
				mu.Lock()
				written(c)
				mu.Unlock()
			}
			return nil
		})
	}
	return grp.Wait()
}

// copyChunk writes a chunk's sessions and events in one transaction.
func copyChunk(ctx context.Context, pool *pgxpool.Pool, siteID int64, c *chunk) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sessions"}, sessionColumns, &sessionRows{site: siteID, rows: c.sessions, i: -1}); err != nil {
			return fmt.Errorf("copy sessions: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, &eventRows{site: siteID, rows: c.events, i: -1}); err != nil {
			return fmt.Errorf("copy events: %w", err)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w (the site already holds rows made with this seed: use another seed)", err)
	}
	return err
}

// refreshExistsSQL looks the daily view's refresh function up in pg_proc
// (through the search path), so that seeding works before the view exists.
const refreshExistsSQL = `SELECT to_regprocedure('refresh_daily_analytics(text)') IS NOT NULL`

const refreshSQL = `SELECT refresh_daily_analytics($1::text)`

// Refresh refreshes the daily view once, through the same SQL function that
// pg_cron, the CLI and the watchtower call. It reports false, and does
// nothing, when the database has no such function yet.
func Refresh(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var exists bool
	if err := pool.QueryRow(ctx, refreshExistsSQL).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up refresh_daily_analytics: %w", err)
	}
	if !exists {
		return false, nil
	}
	if _, err := pool.Exec(ctx, refreshSQL, RefreshTrigger); err != nil {
		return false, fmt.Errorf("refresh the daily view: %w", err)
	}
	return true, nil
}

// BenchSeed is the seed Bench uses, so that benchmark runs write the same rows.
const BenchSeed = 20260101

// Bench seeds sessions over days for the site with public id publicID
// (which must exist, typically in a scratch database) without progress output
// and without refreshing the view, and returns the Summary: print
// Summary.String() for the rows per second.
func Bench(ctx context.Context, pool *pgxpool.Pool, publicID string, sessions int64, days int) (Summary, error) {
	return Run(ctx, pool, Options{PublicID: publicID, Sessions: sessions, Days: days, Seed: BenchSeed, SkipRefresh: true})
}
