package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CounterShards is the number of rows each minute's ingest counters are
// spread over, so that concurrent requests rarely wait on one row lock.
const CounterShards = 64

// MaxSessionFailures bounds the client-reported failures one session adds to
// the ingest error rate over its whole life, so that no single tab can move
// the rate by itself (the watchtower also leaves out the largest client).
const MaxSessionFailures = 10

// Store writes batches to PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	counts *counters
}

// NewStore returns a store over pool that writes its ingest counters every
// DefaultCounterFlush.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, counts: newCounters(pool, DefaultCounterFlush)}
}

// FlushCounters writes the ingest counters gathered so far (counters.go).
func (s *Store) FlushCounters(ctx context.Context) error { return s.counts.flush(ctx) }

// Request is what the store needs besides the batch.
type Request struct {
	SiteID int64
	Client Client
	// ClientKey identifies the sender for the error rate (a hash of its IP
	// address); "" when unknown.
	ClientKey string
	// Converts: the site has a conversion destination (sites.Site.Converts).
	// When a destination is configured after a session qualified, the
	// watchtower's sweep creates the session's outbox rows.
	Converts bool
}

// Result is what a batch did.
type Result struct {
	// Stored is the number of events stored for the first time.
	Stored int
	// Duplicates is the number of events already stored (or repeated in the batch).
	Duplicates int
	// SessionCreated is true when this batch created the session.
	SessionCreated bool
	// LeadScore is the session's score after the batch.
	LeadScore int
	// Conversions are the outbox rows this batch created, to publish once
	// the transaction has committed.
	Conversions []string
	// CountersDue: the ingest counters are due to be written
	// (Store.FlushCounters), best after the answer.
	CountersDue bool

	clientFailures int // the client's reported failures counted (capped per session)
}

// Accepted is what the response reports as accepted: new events and heartbeats.
func (r Result) Accepted(b *Batch) int { return r.Stored + b.Heartbeat.Count }

// DataError is a batch the database refused because of its data (SQLSTATE
// class 22, data exception, or 23, integrity constraint violation): it will
// never be stored, so it is answered 400, not 5xx.
type DataError struct{ Err *pgconn.PgError }

func (e *DataError) Error() string { return "the database refused the data: " + e.Err.Message }
func (e *DataError) Unwrap() error { return e.Err }

// dataError wraps err as a *DataError when the database refused the data.
func dataError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 && (pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23") {
		return &DataError{Err: pgErr}
	}
	return err
}

// A batch is one transaction of at most three statements, sent together in
// one round trip (a pgx batch is an implicit transaction, also through a
// transaction-mode pooler):
//
//  1. timeoutSQL bounds the transaction on the server;
//  2. ingestSQL stores events, session and returning flags in one
//     statement (a batch that creates a session or moves its start takes
//     the visitor's lock, in sessions_visitor_started, sql/0009);
//  3. conversionSQL (for a browser's batch with an ad click id, on a site
//     with a destination) puts a qualified lead into the conversion outbox,
//     in the same transaction that raised its score past the threshold.
//
// The lead score is a generated column (sql/0003), so it follows the
// aggregates in the same statement that changes them. The ingest counters
// are not written per batch: they are gathered in memory and written about
// once a second (counters.go).

// timeoutSQL opens every batch.
const timeoutSQL = `SELECT set_config('statement_timeout', @timeout::text, true)`

// ingestSQL: the session's stored clock skew (or, for a new session, this
// attempt's) corrects the client times; events go in with ON CONFLICT DO
// NOTHING, which tells which are new; the session upsert adds only the new
// events to its counters and merges times and cumulative values with
// GREATEST / LEAST, so that any order of delivery gives the same row. The
// returning flag is what it is defined to be, a function of the set of the
// visitor's stored sessions: when the batch creates the session or moves its
// start earlier, sessions_visitor_started (sql/0009) looks up the session's
// own flag and makes the visitor's later sessions returning (a flag can only
// turn false by its own session moving earlier). The client's reported
// failures are capped per session (the session's client_failures) and
// returned for the ingest counters.
const ingestSQL = `
WITH cur AS (
    SELECT started_at, is_returning, clock_skew_ms, client_failures FROM sessions WHERE site_id = @site_id AND id = @sid::uuid
), k AS (
    -- What the batch takes from the stored session (one row, stored or not):
    -- the clock correction decided at creation, the start and flag, and how
    -- many of the failures the client reports still count.
    SELECT coalesce(c.clock_skew_ms, @skew_ms::bigint) * interval '1 millisecond' AS d,
           c.started_at AS cur_start, c.is_returning AS cur_returning,
           least(@failures::int, greatest(0, @max_session_failures::int - coalesce(c.client_failures, 0))) AS fails
    FROM (VALUES (true)) one LEFT JOIN cur c ON true
), ins AS (
    INSERT INTO events (site_id, id, session_id, type, occurred_at, url, data)
    SELECT @site_id, e.id, @sid::uuid, e.type, e.at + k.d, e.url, e.data
    FROM k, unnest(@ids::uuid[], @types::text[], @times::timestamptz[], @urls::text[], @data::jsonb[]) AS e(id, type, at, url, data)
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
), t AS (
    -- The batch's corrected times (batchTimes: its earliest and latest
    -- client times and its latest interaction).
    SELECT k.d, k.fails, k.cur_start, k.cur_returning,
           @first_at::timestamptz + k.d AS started_at,
           @last_at::timestamptz + k.d AS last_seen_at,
           @active_at::timestamptz + k.d AS active_at
    FROM k
)
INSERT INTO sessions AS s (
    site_id, id, visitor_id, started_at, last_seen_at, active_at, last_active_at, clock_skew_ms, client_failures,
    landing_url, referrer, referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    gclid, wbraid, gbraid, traffic_source, device_type, browser, os, language, timezone,
    screen_width, screen_height, is_bot, is_returning,
    pageviews, event_count, engaged_ms, max_scroll, phone_clicks, whatsapp_clicks, form_submits, custom_events)
SELECT @site_id, @sid::uuid, @vid::uuid, t.started_at, t.last_seen_at, t.active_at, greatest(t.started_at, t.active_at),
       @skew_ms, t.fails,
       @landing_url, @referrer, @referrer_host, @utm_source, @utm_medium, @utm_campaign, @utm_term, @utm_content,
       @gclid, @wbraid, @gbraid, @traffic_source, @device_type, @browser, @os, @language, @timezone,
       @screen_width::int, @screen_height::int, @bot::boolean,
       -- The returning flag: the stored one unless this batch creates the
       -- session or moves its start earlier (sql/0009).
       CASE WHEN t.cur_start <= t.started_at THEN t.cur_returning
            WHEN @vid::uuid IS NULL THEN false
            ELSE sessions_visitor_started(@site_id, @vid::uuid, @sid::uuid, t.started_at) END,
       agg.pageviews, agg.stored, @engaged_ms, @max_scroll, agg.phone, agg.whatsapp, agg.forms, agg.custom
FROM agg, t
ON CONFLICT (site_id, id) DO UPDATE SET
    started_at      = least(s.started_at, EXCLUDED.started_at),
    last_seen_at    = greatest(s.last_seen_at, EXCLUDED.last_seen_at),
    active_at       = greatest(s.active_at, EXCLUDED.active_at),
    last_active_at  = greatest(least(s.started_at, EXCLUDED.started_at), s.active_at, EXCLUDED.active_at),
    updated_at      = now(),
    client_failures = s.client_failures + EXCLUDED.client_failures,
    -- The flag goes with the earliest start: a concurrent batch that read
    -- the row before another moved it carries a flag for a later start.
    is_returning    = CASE WHEN EXCLUDED.started_at < s.started_at THEN EXCLUDED.is_returning
                           WHEN EXCLUDED.started_at = s.started_at THEN s.is_returning OR EXCLUDED.is_returning
                           ELSE s.is_returning END,
    gclid           = coalesce(s.gclid, EXCLUDED.gclid),
    wbraid          = coalesce(s.wbraid, EXCLUDED.wbraid),
    gbraid          = coalesce(s.gbraid, EXCLUDED.gbraid),
    traffic_source  = CASE WHEN s.gclid IS NULL AND s.wbraid IS NULL AND s.gbraid IS NULL
                            AND EXCLUDED.traffic_source = 'google_ads'
                           THEN 'google_ads' ELSE s.traffic_source END,
    pageviews       = s.pageviews + EXCLUDED.pageviews,
    event_count     = s.event_count + EXCLUDED.event_count,
    engaged_ms      = greatest(s.engaged_ms, EXCLUDED.engaged_ms),
    max_scroll      = greatest(s.max_scroll, EXCLUDED.max_scroll),
    phone_clicks    = s.phone_clicks + EXCLUDED.phone_clicks,
    whatsapp_clicks = s.whatsapp_clicks + EXCLUDED.whatsapp_clicks,
    form_submits    = s.form_submits + EXCLUDED.form_submits,
    custom_events   = s.custom_events + EXCLUDED.custom_events
RETURNING (xmax = 0), (SELECT stored FROM agg), (SELECT fails FROM t), lead_score`

// conversionSQL writes the outbox rows of a qualified session: one per
// destination the site has configured, at most one per (site, click id,
// destination), so a click that started several sessions (a new tab, a
// renewal after 30 minutes) converts once, and neither a replay nor a forged
// batch can add a second. It also catches a click id or the settings that
// arrived after the score crossed: any later batch of the session creates
// the missing row (and the watchtower's sweep does for sessions that send no
// more). The value is the score when the row is made, the time the session's
// latest interaction.
const conversionSQL = `
INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, visitor_id, value, currency, converted_at)
SELECT s.site_id, s.id, d.destination, c.kind, c.id, s.visitor_id, s.lead_score, st.currency, s.last_active_at
FROM sessions s
JOIN sites st ON st.id = s.site_id
CROSS JOIN LATERAL (SELECT CASE WHEN s.gclid IS NOT NULL THEN 'gclid' WHEN s.gbraid IS NOT NULL THEN 'gbraid' ELSE 'wbraid' END AS kind,
                           coalesce(s.gclid, s.gbraid, s.wbraid) AS id) c
CROSS JOIN LATERAL (VALUES
    ('google_ads', st.google_ads_customer_id IS NOT NULL AND st.google_ads_conversion_action IS NOT NULL),
    ('ga4', st.ga4_measurement_id IS NOT NULL AND st.ga4_api_secret IS NOT NULL)) d(destination, configured)
WHERE s.site_id = @site_id AND s.id = @sid::uuid AND NOT s.is_bot AND s.lead_score > st.lead_threshold
  AND c.id IS NOT NULL AND d.configured
ON CONFLICT (site_id, click_id, destination) DO NOTHING
RETURNING id::text`

var (
	timeoutQuery    = compileNamed(timeoutSQL)
	ingestQuery     = compileNamed(ingestSQL)
	conversionQuery = compileNamed(conversionSQL)
)

// statementTimeout bounds each batch's transaction on the server, below the
// handler's deadline, so that a stuck statement ends there too.
const statementTimeout = "4s"

// Save stores a validated batch in one transaction and returns what it did.
func (s *Store) Save(ctx context.Context, req Request, b *Batch) (Result, error) {
	args := ingestArgs(req, b)
	batch := &pgx.Batch{}
	batch.Queue(timeoutQuery.sql, timeoutQuery.args(args)...)
	batch.Queue(ingestQuery.sql, ingestQuery.args(args)...)
	if mayConvert(req, b) {
		batch.Queue(conversionQuery.sql, conversionQuery.args(args)...)
	}
	br := s.pool.SendBatch(ctx, batch)
	res, err := readResults(br, req, b)
	if closeErr := br.Close(); err == nil && closeErr != nil {
		err = closeErr
	}
	if err != nil {
		return Result{}, fmt.Errorf("store batch for session %s: %w", b.SID, dataError(err))
	}
	bot := int64(b2i(req.Client.Bot))
	res.CountersDue = s.counts.add(counterRow{
		requests: 1 - bot, botRequests: bot,
		eventsAccepted:  int64(res.Stored + b.Heartbeat.Count),
		eventsDuplicate: int64(res.Duplicates),
		eventsRejected:  int64(len(b.Rejected)),
		clientFailures:  int64(res.clientFailures),
	}, req.ClientKey)
	return res, nil
}

// mayConvert: only a browser's batch that carries an ad click id, for a
// site with a destination, can make a session convert (the landing context,
// click id included, comes with every batch), so the others do not pay for
// the outbox statement.
func mayConvert(req Request, b *Batch) bool {
	return req.Converts && !req.Client.Bot && (b.Ctx.GCLID != "" || b.Ctx.WBRAID != "" || b.Ctx.GBRAID != "")
}

func readResults(br pgx.BatchResults, req Request, b *Batch) (Result, error) {
	var res Result
	if _, err := br.Exec(); err != nil { // statement timeout
		return res, err
	}
	if err := br.QueryRow().Scan(&res.SessionCreated, &res.Stored, &res.clientFailures, &res.LeadScore); err != nil {
		return res, err
	}
	res.Duplicates = b.Offered() - res.Stored
	if mayConvert(req, b) {
		rows, err := br.Query()
		if err != nil {
			return res, err
		}
		res.Conversions, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, err
		}
	}
	return res, nil
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

// nullableTime is a heartbeat time for the statement: NULL when the batch
// has none (least/greatest ignore NULLs).
func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ingestArgs names the statements' parameters. Arrays go as text (uuid and
// jsonb cast in SQL), so that every pgx exec mode, and a pooler that keeps no
// prepared statements, encodes them the same way.
func ingestArgs(req Request, b *Batch) map[string]any {
	n := len(b.Events)
	ids := make([]string, n)
	types := make([]string, n)
	times := make([]time.Time, n)
	urls := make([]*string, n)
	data := make([]string, n)
	for i, e := range b.Events {
		ids[i], types[i], times[i], urls[i], data[i] = e.ID.String(), e.Type, e.ClientAt, nullable(e.URL), string(e.Data)
	}
	var vid *string
	if b.VID != nil {
		v := b.VID.String()
		vid = &v
	}
	c := b.Ctx
	hb := b.Heartbeat
	first, last, active := batchTimes(b)
	return map[string]any{
		"first_at": first, "last_at": last, "active_at": nullableTime(active),
		"timeout": statementTimeout,
		"site_id": req.SiteID, "sid": b.SID.String(), "vid": vid,
		"ids": ids, "types": types, "times": times, "urls": urls, "data": data,
		"skew_ms":    b.Skew.Milliseconds(),
		"engaged_ms": hb.ActiveMS, "max_scroll": hb.Scroll,
		"landing_url": nullable(c.URL), "referrer": nullable(c.Referrer), "referrer_host": nullable(referrerHost(c.Referrer)),
		"utm_source": nullable(c.UTMSource), "utm_medium": nullable(c.UTMMedium), "utm_campaign": nullable(c.UTMCampaign),
		"utm_term": nullable(c.UTMTerm), "utm_content": nullable(c.UTMContent),
		"gclid": nullable(c.GCLID), "wbraid": nullable(c.WBRAID), "gbraid": nullable(c.GBRAID),
		"traffic_source": TrafficSource(c),
		"device_type":    req.Client.Device, "browser": req.Client.Browser, "os": req.Client.OS, "bot": req.Client.Bot,
		"language": nullable(c.Lang), "timezone": nullable(c.TZ),
		"screen_width": nullableInt(c.ScreenWidth), "screen_height": nullableInt(c.ScreenHeight),
		"failures": clientFailures(req, b), "max_session_failures": MaxSessionFailures,
	}
}

// batchTimes are the batch's client times that the session's merge uses:
// the earliest and latest of its events and heartbeats, and its latest
// interaction (every event is one; of heartbeats only active ones are),
// zero when it has none (only idle heartbeats).
func batchTimes(b *Batch) (first, last, active time.Time) {
	hb := b.Heartbeat
	first, last, active = hb.FirstAt, hb.LastAt, hb.LastActiveAt
	for _, e := range b.Events {
		if first.IsZero() || e.ClientAt.Before(first) {
			first = e.ClientAt
		}
		if e.ClientAt.After(last) {
			last = e.ClientAt
		}
		if e.ClientAt.After(active) {
			active = e.ClientAt
		}
	}
	return first, last, active
}

// What the counters count. `requests` are the attempts the error rate is
// made of: requests from browsers for a known site that reached storage (or
// failed on the server's side). Bots are kept out of it (bot_requests), and
// so are requests refused with a 4xx (rejected_requests), so that junk
// traffic can neither raise nor dilute the error rate. Client-reported
// failures are counted only from browsers' requests whose batch was stored
// (capped in ingestSQL), at most MaxSessionFailures per session.

// Tally is a request's contribution to the ingest counters when the
// batch statement did not run (a refused request, a batch with nothing to
// store, or a server failure).
type Tally struct {
	Refused        bool // answered 4xx before storage
	ServerFailure  bool // answered 5xx
	EventsRejected int
	Bot            bool
}

// Count adds t to the ingest counters and, when they are due, writes them
// (bounded to one second and detached from the request's cancellation: the
// answer to the client does not depend on it). A bot's server failure counts
// as a bot request, not as a failed browser request.
func (s *Store) Count(ctx context.Context, t Tally) error {
	due := s.counts.add(counterRow{
		requests:         int64(b2i(!t.Refused && !t.Bot)),
		rejectedRequests: int64(b2i(t.Refused)),
		serverFailures:   int64(b2i(t.ServerFailure && !t.Bot)),
		eventsRejected:   int64(t.EventsRejected),
		botRequests:      int64(b2i(t.Bot)),
	}, "")
	if !due {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	return s.counts.flush(ctx)
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
