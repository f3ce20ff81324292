package conversions

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Sweep defaults.
const (
	// DefaultBackfillWindow: the sweep creates missing rows for sessions
	// that started within it. Google Ads takes clicks up to 90 days old, GA4
	// events up to 72 hours; a week covers a destination configured a few
	// days after the leads came.
	DefaultBackfillWindow = 7 * 24 * time.Hour
	// DefaultMaxPerRun bounds what one run creates and republishes.
	DefaultMaxPerRun = 200
	// maxConsecutiveFailures ends a run's publishing when QStash keeps
	// failing: the next run tries again.
	maxConsecutiveFailures = 3
)

// SweepOptions are the sweep's bounds and injectable parts.
type SweepOptions struct {
	// RepublishAfter: rows pending longer than this are republished.
	RepublishAfter time.Duration
	// BackfillWindow and MaxPerRun: zero is the default.
	BackfillWindow time.Duration
	MaxPerRun      int
	Now            func() time.Time
	Logger         *slog.Logger
}

// Sweeper republishes pending conversions and creates the rows that no batch
// will create.
type Sweeper struct {
	db   *pgxpool.Pool
	pub  *Publisher
	opts SweepOptions
}

// NewSweeper makes a sweep over db that publishes with pub (nil: rows are
// created but nothing is published).
func NewSweeper(db *pgxpool.Pool, pub *Publisher, opts SweepOptions) *Sweeper {
	if opts.RepublishAfter <= 0 {
		opts.RepublishAfter = 5 * time.Minute
	}
	if opts.BackfillWindow <= 0 {
		opts.BackfillWindow = DefaultBackfillWindow
	}
	if opts.MaxPerRun <= 0 {
		opts.MaxPerRun = DefaultMaxPerRun
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Sweeper{db: db, pub: pub, opts: opts}
}

// SweeperFromConfig builds the sweep with its publisher from configuration.
func SweeperFromConfig(db *pgxpool.Pool, pub config.QStashPublish, sweep config.ConversionSweep, logger *slog.Logger) (*Sweeper, error) {
	p, err := PublisherFromConfig(db, pub, logger)
	if err != nil {
		return nil, err
	}
	return NewSweeper(db, p, SweepOptions{RepublishAfter: sweep.RepublishAfter, Logger: logger}), nil
}

// SweepReport is one run.
type SweepReport struct {
	// Created are rows made for sessions that qualified before their site had
	// the destination.
	Created int `json:"created"`
	// Republished and PublishFailed count the publishes of stale pending rows
	// and of the created ones.
	Republished   int `json:"republished"`
	PublishFailed int `json:"publish_failed"`
	// Published is false when no QStash is configured.
	Published bool `json:"published"`
}

// backfillSQL is ingest's conversionSQL over every session that started in
// the window rather than one: a qualified non-bot session with a click id on
// a site with the destination configured, and no row yet for its (site,
// click id, destination). The click-id predicate is sessions_click_started_idx's,
// so only ad sessions are read. The earliest session of a click wins, as the
// first batch does in ingest.
const backfillSQL = `
INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, visitor_id, value, currency, converted_at)
SELECT DISTINCT ON (s.site_id, c.id, d.destination)
       s.site_id, s.id, d.destination, c.kind, c.id, s.visitor_id, s.lead_score, st.currency, s.last_active_at
FROM sessions s
JOIN sites st ON st.id = s.site_id
CROSS JOIN LATERAL (SELECT CASE WHEN s.gclid IS NOT NULL THEN 'gclid' WHEN s.gbraid IS NOT NULL THEN 'gbraid' ELSE 'wbraid' END AS kind,
                           coalesce(s.gclid, s.gbraid, s.wbraid) AS id) c
CROSS JOIN LATERAL (VALUES
    ('google_ads', st.google_ads_customer_id IS NOT NULL AND st.google_ads_conversion_action IS NOT NULL),
    ('ga4', st.ga4_measurement_id IS NOT NULL AND st.ga4_api_secret IS NOT NULL)) d(destination, configured)
WHERE NOT s.is_bot AND (s.gclid IS NOT NULL OR s.wbraid IS NOT NULL OR s.gbraid IS NOT NULL)
  AND s.started_at >= @since::timestamptz
  AND s.lead_score > st.lead_threshold AND d.configured
  AND NOT EXISTS (SELECT 1 FROM conversions x WHERE x.site_id = s.site_id AND x.click_id = c.id AND x.destination = d.destination)
ORDER BY s.site_id, c.id, d.destination, s.started_at, s.id
LIMIT @limit
ON CONFLICT (site_id, click_id, destination) DO NOTHING
RETURNING id::text`

// stalePendingSQL: rows no publish reached, oldest first, once any
// retry_after has passed, with the deduplication id to publish them with: the
// conversion's id while it has never been published; once the worker handed
// it back after QStash's last retry (it has a message id), the id and the
// attempts so far, so that QStash's 10-minute deduplication cannot swallow
// the new message into the dead one, and two sweeps at once still publish once.
const stalePendingSQL = `
SELECT id::text, CASE WHEN qstash_message_id IS NULL THEN id::text ELSE id::text || '-r' || attempts END
FROM conversions
WHERE status = 'pending' AND updated_at <= @before::timestamptz
  AND (retry_after IS NULL OR retry_after <= @now::timestamptz)
ORDER BY created_at
LIMIT @limit`

// Run sweeps once. The error is a database error; publish failures are
// counted, logged and left to the next run.
func (s *Sweeper) Run(ctx context.Context) (SweepReport, error) {
	now := s.opts.Now()
	rep := SweepReport{Published: s.pub != nil}
	rows, err := s.db.Query(ctx, backfillSQL, pgx.NamedArgs{"since": now.Add(-s.opts.BackfillWindow), "limit": s.opts.MaxPerRun})
	if err != nil {
		return rep, fmt.Errorf("sweep: create missing conversions: %w", err)
	}
	created, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return rep, fmt.Errorf("sweep: create missing conversions: %w", err)
	}
	rep.Created = len(created)
	if s.pub == nil {
		return rep, nil
	}
	rows, err = s.db.Query(ctx, stalePendingSQL, pgx.NamedArgs{
		"before": now.Add(-s.opts.RepublishAfter), "now": now, "limit": max(0, s.opts.MaxPerRun-len(created)),
	})
	if err != nil {
		return rep, fmt.Errorf("sweep: find pending conversions: %w", err)
	}
	type publish struct{ id, dedup string }
	todo := make([]publish, 0, len(created))
	for _, id := range created {
		todo = append(todo, publish{id, id})
	}
	for rows.Next() {
		var p publish
		if err := rows.Scan(&p.id, &p.dedup); err != nil {
			rows.Close()
			return rep, fmt.Errorf("sweep: find pending conversions: %w", err)
		}
		todo = append(todo, p)
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("sweep: find pending conversions: %w", err)
	}
	failedInARow := 0
	for i, p := range todo {
		id := p.id
		if failedInARow == maxConsecutiveFailures {
			rep.PublishFailed += len(todo) - i
			break
		}
		if msg, err := s.pub.publish(ctx, p.id, p.dedup); err != nil && msg == "" {
			failedInARow++
			rep.PublishFailed++
			s.opts.Logger.WarnContext(ctx, "sweep: publish failed", "conversion_id", id, "err", err.Error())
			continue
		}
		failedInARow = 0
		if i >= len(created) {
			rep.Republished++
		}
	}
	return rep, nil
}

// Job runs the sweep once and logs one line with its report: the scheduled
// job of `opsmantik run conversions-sweep`, `opsmantik dev` and, before the
// checks, watchtower-cron.
func (s *Sweeper) Job(ctx context.Context) error {
	start := time.Now()
	rep, err := s.Run(ctx)
	level := slog.LevelInfo
	attrs := []any{"created", rep.Created, "republished", rep.Republished, "publish_failed", rep.PublishFailed, "published", rep.Published,
		"ms", time.Since(start).Milliseconds()}
	if rep.PublishFailed > 0 {
		level = slog.LevelWarn
	}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, "err", err.Error())
	}
	s.opts.Logger.Log(ctx, level, "conversion sweep", attrs...)
	return err
}
