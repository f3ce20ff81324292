// Package ingest is the server half of the tracker protocol (docs/protocol.md):
// it parses and validates batches, stores sessions and events idempotently,
// scores each session as a lead and counts what it did for the error rate.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/protocol"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// DatabaseDeadline bounds the database work of one request.
const DatabaseDeadline = 5 * time.Second

// ClientKey identifies a request's sender for the error rate without
// storing its address: a truncated SHA-256 of the remote IP (on Lambda the
// Function URL adapter sets it from the request context's source IP).
func ClientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	sum := sha256.Sum256([]byte("opsmantik-client/" + host))
	return hex.EncodeToString(sum[:8])
}

// Handler serves the sync endpoint: POST ingest, GET health, OPTIONS preflight.
type Handler struct {
	pool  *pgxpool.Pool
	store *Store
	sites *sites.Cache
	// clients remembers User-Agent classifications.
	clients uaCache
	now     func() time.Time
	logger  *slog.Logger
	// publisher hands new conversions to the delivery queue (nil: none).
	publisher Publisher
}

// Publisher hands conversion outbox rows to their delivery queue once the
// transaction that created them has committed. It must not fail the
// request: a row it could not publish stays pending, and the watchtower's
// sweep publishes it later.
type Publisher interface {
	Publish(ctx context.Context, conversionIDs []string)
}

// WithPublisher publishes the conversions batches create.
func WithPublisher(p Publisher) Option { return func(h *Handler) { h.publisher = p } }

// Option changes a Handler's defaults.
type Option func(*Handler)

// WithClock sets the handler's clock (tests).
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithSiteCache sets how long sites are cached (sites.CacheOptions): a
// change to a site takes effect within its TTL.
func WithSiteCache(o sites.CacheOptions) Option {
	return func(h *Handler) { h.sites = sites.NewCache(h.pool, o) }
}

// WithCounterFlush sets how often the ingest counters are written
// (DefaultCounterFlush; 0 writes them after every request).
func WithCounterFlush(every time.Duration) Option {
	return func(h *Handler) { h.store.counts.every = every }
}

// WithLogger sets the logger for the one line per request.
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.logger = l } }

// New returns the sync handler over pool.
func New(pool *pgxpool.Pool, opts ...Option) *Handler {
	h := &Handler{pool: pool, store: NewStore(pool), sites: sites.NewCache(pool, sites.CacheOptions{}), clients: newUACache(),
		now: time.Now, logger: slog.Default()}
	for _, o := range opts {
		o(h)
	}
	return h
}

// FromConfig opens the database and builds the handler (functions/sync).
func FromConfig(ctx context.Context, cfg *config.Sync) (http.Handler, error) {
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, err
	}
	logger := cfg.Log.Logger()
	opts := []Option{WithLogger(logger)}
	// Without QSTASH_TOKEN new conversions stay pending (WT005 reports them).
	pub, err := conversions.PublisherFromConfig(pool, cfg.Publish, logger)
	if err != nil {
		return nil, err
	}
	if pub != nil {
		opts = append(opts, WithPublisher(pub))
	}
	return New(pool, opts...), nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.ingest(w, r)
	case http.MethodGet, http.MethodHead:
		h.health(w, r)
	case http.MethodOptions:
		h.preflight(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed"})
	}
}

type (
	errorBody = protocol.Refused
	okBody    = protocol.Accepted
)

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// outcome is what the request log line reports.
type outcome struct {
	status     int
	code       string
	site       string
	accepted   int
	duplicates int
	rejected   int
	bot        bool
	classified bool // bot is known (the User-Agent was classified)
	channel    string
}

func (h *Handler) ingest(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	out := h.ingestBatch(w, r, h.now())
	level := slog.LevelInfo
	if out.status >= 500 {
		level = slog.LevelError
	}
	h.logger.LogAttrs(r.Context(), level, "sync",
		slog.Int("status", out.status), slog.String("site", out.site), slog.String("error", out.code),
		slog.Int("accepted", out.accepted), slog.Int("duplicate", out.duplicates), slog.Int("rejected", out.rejected),
		slog.Bool("bot", out.bot), slog.String("channel", out.channel),
		slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
}

// fail answers with an error and then counts the request. The answer is
// flushed first: when the database is what failed, counting may wait for it,
// and the client should not.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, out outcome, status int, code, detail string) outcome {
	writeJSON(w, status, errorBody{Error: code, Detail: detail})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if !out.classified {
		// Refused before the batch was parsed: a bot's refusals and failures
		// are counted as a bot's, so classify here (touch points cannot
		// change that).
		out.bot, out.classified = h.clients.Classify(r.UserAgent(), 0).Bot, true
	}
	_ = h.store.Count(r.Context(), Tally{ServerFailure: status >= 500, Refused: status < 500, Bot: out.bot})
	out.status, out.code = status, code
	return out
}

func (h *Handler) ingestBatch(w http.ResponseWriter, r *http.Request, now time.Time) outcome {
	var out outcome
	// The database work has a deadline well under the tracker's 10 s and the
	// Lambda timeout: a database that does not answer gives a fast 503 that
	// the browser can read (CORS headers included), never a timeout.
	ctx, cancel := context.WithTimeout(r.Context(), DatabaseDeadline)
	defer cancel()
	r = r.WithContext(ctx)
	origin := r.Header.Get("Origin")
	if origin != "" {
		// Error answers carry the Origin too, so that the tracker can read a
		// 4xx and drop the batch instead of retrying it as a network error.
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Vary", "Origin")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "text/plain" && mt != "application/json") {
			return h.fail(w, r, out, http.StatusUnsupportedMediaType, "unsupported_media_type", "send text/plain or application/json")
		}
	}
	if r.ContentLength > MaxBodyBytes {
		return h.fail(w, r, out, http.StatusRequestEntityTooLarge, "payload_too_large", "body larger than 65536 bytes")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return h.fail(w, r, out, http.StatusRequestEntityTooLarge, "payload_too_large", "body larger than 65536 bytes")
		}
		return h.fail(w, r, out, http.StatusBadRequest, "invalid_json", "could not read the body")
	}
	batch, err := Parse(body, now)
	if err != nil {
		var reqErr *RequestError
		if errors.As(err, &reqErr) {
			return h.fail(w, r, out, reqErr.Status, reqErr.Code, reqErr.Detail)
		}
		return h.fail(w, r, out, http.StatusBadRequest, "invalid_payload", err.Error())
	}
	out.site, out.channel, out.rejected = batch.Site, batch.Channel, len(batch.Rejected)
	// Once per request, with the touch points that tell an iPad with a
	// desktop User-Agent from a Mac.
	client := h.clients.Classify(r.UserAgent(), batch.Ctx.Touch)
	out.bot, out.classified = client.Bot, true
	site, err := h.sites.Get(r.Context(), batch.Site)
	if errors.Is(err, sites.ErrNotFound) {
		return h.fail(w, r, out, http.StatusForbidden, "unknown_site", "")
	}
	if err != nil {
		h.logger.ErrorContext(r.Context(), "sync: site lookup failed", "site", batch.Site, "err", err)
		return h.fail(w, r, out, http.StatusServiceUnavailable, "storage_unavailable", "")
	}
	if origin != "" && !site.AllowsOrigin(origin) {
		return h.fail(w, r, out, http.StatusForbidden, "origin_not_allowed", "")
	}
	resp := okBody{OK: true, Rejected: batch.Rejected}
	if resp.Rejected == nil {
		resp.Rejected = []Rejection{}
	}
	if batch.Empty() {
		// Nothing stored: the client's reported failures are not counted
		// (only requests whose batch was stored may report them).
		if err := h.store.Count(r.Context(), Tally{EventsRejected: len(batch.Rejected), Bot: client.Bot}); err != nil {
			h.logger.WarnContext(r.Context(), "sync: counting failed", "err", err)
		}
		writeJSON(w, http.StatusOK, resp)
		out.status = http.StatusOK
		return out
	}
	res, err := h.store.Save(r.Context(), Request{SiteID: site.ID, Client: client, ClientKey: ClientKey(r), Converts: site.Converts}, batch)
	var dataErr *DataError
	if errors.As(err, &dataErr) {
		// The data can never be stored: a 4xx, so that the tracker drops
		// the batch instead of retrying it forever.
		h.logger.WarnContext(r.Context(), "sync: data refused", "site", batch.Site, "err", err)
		return h.fail(w, r, out, http.StatusBadRequest, "invalid_payload", dataErr.Error())
	}
	if err != nil {
		h.logger.ErrorContext(r.Context(), "sync: store failed", "site", batch.Site, "err", err)
		return h.fail(w, r, out, http.StatusServiceUnavailable, "storage_unavailable", "")
	}
	if len(res.Conversions) > 0 && h.publisher != nil {
		h.publisher.Publish(r.Context(), res.Conversions)
	}
	resp.Accepted, resp.Duplicates = res.Accepted(batch), res.Duplicates
	out.accepted, out.duplicates = resp.Accepted, resp.Duplicates
	writeJSON(w, http.StatusOK, resp)
	out.status = http.StatusOK
	if res.CountersDue {
		// About once a second: the answer first, then the counters.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
		defer cancel()
		if err := h.store.FlushCounters(ctx); err != nil {
			h.logger.WarnContext(ctx, "sync: counting failed (kept for the next write)", "err", err)
		}
	}
	return out
}

// Shutdown writes the ingest counters gathered so far; call it before the
// process ends (the Lambda host does on SIGTERM, `opsmantik dev` on exit).
func (h *Handler) Shutdown(ctx context.Context) error { return h.store.FlushCounters(ctx) }

// health is the tracker's probe: 200 when the database answers, 503 when not.
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		// The probe's answer holds nothing private; any page may read it.
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Vary", "Origin")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.pool.Ping(ctx); err != nil {
		h.logger.WarnContext(r.Context(), "sync: health probe failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "database_unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK bool `json:"ok"`
	}{true})
}

// preflight answers CORS preflights. The request carries no body, so the
// origin is checked against the site named in ?site= or else against every
// site's domains.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	host := sites.OriginHost(origin)
	if host == "" {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "origin_not_allowed"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DatabaseDeadline)
	defer cancel()
	allowed, err := h.sites.AllowsOrigin(ctx, r.URL.Query().Get("site"), host)
	if err != nil {
		h.logger.WarnContext(ctx, "sync: preflight site lookup failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage_unavailable"})
		return
	}
	if !allowed {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "origin_not_allowed"})
		return
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Vary", "Origin")
	hdr.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	hdr.Set("Access-Control-Allow-Headers", "Content-Type")
	hdr.Set("Access-Control-Max-Age", strconv.Itoa(86400))
	w.WriteHeader(http.StatusNoContent)
}
