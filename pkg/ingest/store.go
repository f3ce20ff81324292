package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/leadscore"
)

// CounterShards is the number of rows each minute's ingest counters are
// spread over, so that concurrent requests rarely wait on one row lock.
const CounterShards = 16

// Store writes batches to PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Request is what the store needs besides the batch.
type Request struct {
	SiteID int64
	Client Client
}

// Result is what a batch did.
type Result struct {
	// Stored is the number of events stored for the first time.
	Stored int
	// Duplicates is the number of events already stored (or repeated in the batch).
	Duplicates int
	// SessionCreated is true when this batch created the session.
	SessionCreated bool
	LeadScore      int
}

// Accepted is what the response reports as accepted: new events and heartbeats.
func (r Result) Accepted(b *Batch) int { return r.Stored + b.Heartbeat.Count }

// ingestSQL stores a batch in one statement: events first (ON CONFLICT DO
// NOTHING tells which are new), then the session upsert whose counters grow
// by the new events only and whose cumulative values merge with GREATEST /
// LEAST, then the minute's counters. All data-modifying parts see one
// snapshot; the session row exists when the statement ends.
const ingestSQL = `
WITH ev AS (
    SELECT * FROM unnest($3::uuid[], $4::text[], $5::timestamptz[], $6::text[], $7::jsonb[])
        AS e(id, type, occurred_at, url, data)
), ins AS (
    INSERT INTO events (site_id, id, session_id, type, occurred_at, url, data)
    SELECT $1, id, $2, type, occurred_at, url, data FROM ev
    ON CONFLICT (site_id, id) DO NOTHING
    RETURNING type
), agg AS (
    SELECT count(*)::int AS stored,
           count(*) FILTER (WHERE type = 'pageview')::int AS pageviews,
           count(*) FILTER (WHERE type = 'phone_click')::int AS phone,
           count(*) FILTER (WHERE type = 'whatsapp_click')::int AS whatsapp,
           count(*) FILTER (WHERE type = 'form_submit')::int AS forms,
           count(*) FILTER (WHERE type = 'custom')::int AS custom
    FROM ins
), prior AS (
    SELECT $8::uuid IS NOT NULL AND EXISTS (
        SELECT 1 FROM sessions p
        WHERE p.site_id = $1 AND p.visitor_id = $8 AND p.id <> $2
          AND p.started_at < LEAST($9, (SELECT started_at FROM sessions WHERE site_id = $1 AND id = $2))
    ) AS returning
), counted AS (
    INSERT INTO ingest_counters AS c (bucket, shard, requests, events_accepted, events_duplicate,
                                      events_rejected, bot_requests, client_failures)
    SELECT date_trunc('minute', now()), $33, 1 - $26::boolean::int, agg.stored + $34, $35 - agg.stored, $36,
           $26::boolean::int, $37
    FROM agg
    ON CONFLICT (bucket, shard) DO UPDATE SET
        requests         = c.requests + EXCLUDED.requests,
        events_accepted  = c.events_accepted + EXCLUDED.events_accepted,
        events_duplicate = c.events_duplicate + EXCLUDED.events_duplicate,
        events_rejected  = c.events_rejected + EXCLUDED.events_rejected,
        bot_requests     = c.bot_requests + EXCLUDED.bot_requests,
        client_failures  = c.client_failures + EXCLUDED.client_failures
)
INSERT INTO sessions AS s (
    site_id, id, visitor_id, started_at, last_seen_at, last_active_at,
    landing_url, referrer, referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    gclid, wbraid, gbraid, traffic_source, device_type, browser, os, language, timezone,
    screen_width, screen_height, is_bot, is_returning,
    pageviews, event_count, engaged_ms, max_scroll, phone_clicks, whatsapp_clicks, form_submits, custom_events)
SELECT $1, $2, $8, $9, $10, $10,
       $11, $12, $13, $14, $15, $16, $17, $18,
       $19, $20, $21, $22, $23, $24, $25, $27, $28,
       $29, $30, $26::boolean, prior.returning,
       agg.pageviews, agg.stored, $31, $32, agg.phone, agg.whatsapp, agg.forms, agg.custom
FROM agg, prior
ON CONFLICT (site_id, id) DO UPDATE SET
    started_at      = LEAST(s.started_at, EXCLUDED.started_at),
    last_seen_at    = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
    last_active_at  = GREATEST(s.last_active_at, EXCLUDED.last_active_at),
    updated_at      = now(),
    gclid           = COALESCE(s.gclid, EXCLUDED.gclid),
    wbraid          = COALESCE(s.wbraid, EXCLUDED.wbraid),
    gbraid          = COALESCE(s.gbraid, EXCLUDED.gbraid),
    traffic_source  = CASE WHEN s.gclid IS NULL AND s.wbraid IS NULL AND s.gbraid IS NULL
                            AND EXCLUDED.traffic_source = 'google_ads'
                           THEN 'google_ads' ELSE s.traffic_source END,
    is_returning    = s.is_returning OR EXCLUDED.is_returning,
    pageviews       = s.pageviews + EXCLUDED.pageviews,
    event_count     = s.event_count + EXCLUDED.event_count,
    engaged_ms      = GREATEST(s.engaged_ms, EXCLUDED.engaged_ms),
    max_scroll      = GREATEST(s.max_scroll, EXCLUDED.max_scroll),
    phone_clicks    = s.phone_clicks + EXCLUDED.phone_clicks,
    whatsapp_clicks = s.whatsapp_clicks + EXCLUDED.whatsapp_clicks,
    form_submits    = s.form_submits + EXCLUDED.form_submits,
    custom_events   = s.custom_events + EXCLUDED.custom_events
RETURNING (xmax = 0), (SELECT stored FROM agg), is_bot, is_returning, pageviews, engaged_ms,
          max_scroll, phone_clicks, whatsapp_clicks, form_submits, lead_score, started_at`

// raiseScoreSQL only ever raises the score: the aggregates only grow and the
// score is monotonic in them, so the highest score computed is the current
// one, whatever order concurrent batches finish in.
const raiseScoreSQL = `UPDATE sessions SET lead_score = $3 WHERE site_id = $1 AND id = $2 AND lead_score < $3`

// laterSessionsSQL marks the visitor's later sessions as returning when an
// earlier one arrives after them (batches may arrive in any order).
const laterSessionsSQL = `
UPDATE sessions SET is_returning = true, updated_at = now()
WHERE site_id = $1 AND visitor_id = $2 AND id <> $3 AND started_at > $4 AND NOT is_returning
RETURNING id, is_bot, pageviews, engaged_ms, max_scroll, phone_clicks, whatsapp_clicks, form_submits, lead_score`

// Save stores a validated batch and returns what it did.
func (s *Store) Save(ctx context.Context, req Request, b *Batch) (Result, error) {
	args := ingestArgs(req, b)
	var (
		res       Result
		agg       leadscore.Session
		bot       bool
		score     int
		startedAt time.Time
	)
	err := s.pool.QueryRow(ctx, ingestSQL, args...).Scan(&res.SessionCreated, &res.Stored, &bot, &agg.Returning,
		&agg.Pageviews, &agg.EngagedMS, &agg.MaxScroll, &agg.PhoneClicks, &agg.WhatsAppClicks, &agg.FormSubmits,
		&score, &startedAt)
	if err != nil {
		return Result{}, fmt.Errorf("store batch for session %s: %w", b.SID, err)
	}
	res.Duplicates = b.Offered() - res.Stored
	res.LeadScore = score
	if !bot {
		res.LeadScore = max(score, leadscore.Score(agg))
	}
	if res.SessionCreated && b.VID != nil {
		if err := s.markLaterSessions(ctx, req.SiteID, *b.VID, b.SID, startedAt); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func (s *Store) markLaterSessions(ctx context.Context, siteID int64, vid, sid uuid.UUID, startedAt time.Time) error {
	rows, err := s.pool.Query(ctx, laterSessionsSQL, siteID, vid, sid, startedAt)
	if err != nil {
		return fmt.Errorf("mark returning sessions of visitor %s: %w", vid, err)
	}
	type later struct {
		id    uuid.UUID
		bot   bool
		agg   leadscore.Session
		score int
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (later, error) {
		var l later
		err := r.Scan(&l.id, &l.bot, &l.agg.Pageviews, &l.agg.EngagedMS, &l.agg.MaxScroll,
			&l.agg.PhoneClicks, &l.agg.WhatsAppClicks, &l.agg.FormSubmits, &l.score)
		l.agg.Returning = true
		return l, err
	})
	if err != nil {
		return fmt.Errorf("mark returning sessions of visitor %s: %w", vid, err)
	}
	for _, l := range list {
		_ = l
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullableInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

// ingestArgs lays out the statement's parameters.
func ingestArgs(req Request, b *Batch) []any {
	n := len(b.Events)
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	times := make([]time.Time, n)
	urls := make([]*string, n)
	data := make([]string, n)
	started, last := b.Heartbeat.LastAt, b.Heartbeat.LastAt
	for i, e := range b.Events {
		ids[i], types[i], times[i], urls[i], data[i] = e.ID, e.Type, e.OccurredAt, nullable(e.URL), string(e.Data)
		if started.IsZero() || e.OccurredAt.Before(started) {
			started = e.OccurredAt
		}
		if e.OccurredAt.After(last) {
			last = e.OccurredAt
		}
	}
	if b.Heartbeat.Count > 0 && b.Heartbeat.LastAt.Before(started) {
		started = b.Heartbeat.LastAt
	}
	c := b.Ctx
	return []any{
		req.SiteID, b.SID, ids, types, times, urls, data, b.VID, started, last, // $1-$10
		nullable(c.URL), nullable(c.Referrer), nullable(referrerHost(c.Referrer)), // $11-$13
		nullable(c.UTMSource), nullable(c.UTMMedium), nullable(c.UTMCampaign), nullable(c.UTMTerm), nullable(c.UTMContent), // $14-$18
		nullable(c.GCLID), nullable(c.WBRAID), nullable(c.GBRAID), TrafficSource(c), // $19-$22
		req.Client.Device, req.Client.Browser, req.Client.OS, req.Client.Bot, // $23-$26
		nullable(c.Lang), nullable(c.TZ), nullableInt(c.ScreenWidth), nullableInt(c.ScreenHeight), // $27-$30
		b.Heartbeat.ActiveMS, b.Heartbeat.Scroll, // $31-$32
		int16(rand.IntN(CounterShards)), b.Heartbeat.Count, b.Offered(), // $33-$35
		len(b.Rejected), clientFailures(req, b), // $36-$37
	}
}

// What the counters count. `requests` are the attempts the error rate is
// made of: requests from browsers for a known site that reached storage (or
// failed on the server's side). Bots are kept out of it (bot_requests), and
// so are requests refused with a 4xx (rejected_requests), so that junk
// traffic can neither raise nor dilute the error rate. Client failures are
// taken from browsers only.

// Tally is a request's contribution to the ingest counters when the
// batch statement did not run (a refused request, a batch with nothing to
// store, or a server failure).
type Tally struct {
	Refused        bool // answered 4xx before storage
	ServerFailure  bool // answered 5xx
	EventsRejected int
	Bot            bool
	ClientFailures int
}

const tallySQL = `
INSERT INTO ingest_counters AS c (bucket, shard, requests, rejected_requests, server_failures,
                                  events_rejected, bot_requests, client_failures)
VALUES (date_trunc('minute', now()), $1, $7, $2, $3, $4, $5, $6)
ON CONFLICT (bucket, shard) DO UPDATE SET
    requests          = c.requests + EXCLUDED.requests,
    rejected_requests = c.rejected_requests + EXCLUDED.rejected_requests,
    server_failures   = c.server_failures + EXCLUDED.server_failures,
    events_rejected   = c.events_rejected + EXCLUDED.events_rejected,
    bot_requests      = c.bot_requests + EXCLUDED.bot_requests,
    client_failures   = c.client_failures + EXCLUDED.client_failures`

// Count records t in the minute's counters. It is best effort, bounded to
// one second and detached from the request's cancellation: the answer to the
// client does not depend on it.
func (s *Store) Count(ctx context.Context, t Tally) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	failures := t.ClientFailures
	if t.Bot {
		failures = 0
	}
	_, err := s.pool.Exec(ctx, tallySQL, int16(rand.IntN(CounterShards)), b2i(t.Refused), b2i(t.ServerFailure),
		t.EventsRejected, b2i(t.Bot), failures, b2i(!t.Refused && !t.Bot))
	if err != nil {
		return fmt.Errorf("count request: %w", err)
	}
	return nil
}

// clientFailures are the failures a browser reports; bots report none.
func clientFailures(req Request, b *Batch) int {
	if req.Client.Bot {
		return 0
	}
	return b.Failures
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
