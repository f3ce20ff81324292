package stats

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/dashboard"
	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// Authenticator returns the id of the site whose public id and API key
// these are, or sites.ErrUnauthorized.
type Authenticator func(ctx context.Context, publicID, key string) (siteID int64, err error)

// Handler serves GET /api/stats (STATS-API.md): any origin may call it, the
// site's API key is the credential.
type Handler struct {
	svc    *Service
	auth   Authenticator
	logger *slog.Logger
}

// NewHandler returns the endpoint over svc; keys are checked with auth.
func NewHandler(svc *Service, auth Authenticator, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{svc: svc, auth: auth, logger: logger}
}

// SiteKeys checks keys against the sites table (sites.Authenticate).
func SiteKeys(pool *pgxpool.Pool) Authenticator {
	return func(ctx context.Context, publicID, key string) (int64, error) {
		s, err := sites.Authenticate(ctx, pool, publicID, key)
		return s.ID, err
	}
}

// New is the endpoint over pool with its default parts.
func New(pool *pgxpool.Pool, logger *slog.Logger, opts ...Option) *Handler {
	return NewHandler(NewService(pool, opts...), SiteKeys(pool), logger)
}

// FromConfig opens the database and builds the handler (functions/stats).
func FromConfig(ctx context.Context, cfg *config.Stats) (http.Handler, error) {
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, err
	}
	return New(pool, cfg.Log.Logger()).Site(dashboard.Install{TrackerURL: cfg.Dashboard.TrackerURL, SyncURL: cfg.Dashboard.SyncURL}), nil
}

type errorBody struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The key, not a cookie, is the credential: every origin may read
	// every answer, errors included.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet:
		start := time.Now()
		status, code, a := h.get(w, r)
		h.logger.LogAttrs(r.Context(), levelOf(status), "stats",
			slog.Int("status", status), slog.String("site", r.URL.Query().Get("site")), slog.String("error", code),
			slog.String("from", a.From), slog.String("to", a.To),
			slog.Int("view_days", a.ServedFrom.ViewDays), slog.Int("live_days", a.ServedFrom.LiveDays),
			slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
	case http.MethodOptions:
		preflight(w)
	default:
		w.Header().Set("Allow", "GET, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", Detail: "use GET"})
	}
}

// preflight answers the OPTIONS that the Authorization header causes.
func preflight(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func levelOf(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// get answers a GET and returns what the log line reports.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) (int, string, Answer) {
	q := r.URL.Query()
	key, ok := bearer(r.Header.Get("Authorization"))
	if !ok || len(q["site"]) != 1 {
		return h.unauthorized(w)
	}
	siteID, err := h.auth(r.Context(), q.Get("site"), key)
	if errors.Is(err, sites.ErrUnauthorized) {
		return h.unauthorized(w)
	}
	if err != nil {
		return h.unavailable(w, r, err)
	}
	req, err := ParseRequest(q)
	if err != nil {
		return h.invalid(w, err)
	}
	a, err := h.svc.Summary(r.Context(), siteID, req)
	if errors.Is(err, ErrSiteNotFound) { // deleted since the key was checked
		return h.unauthorized(w)
	}
	if err != nil {
		return h.unavailable(w, r, err)
	}
	writeJSON(w, http.StatusOK, a)
	return http.StatusOK, "", a
}

func (h *Handler) unauthorized(w http.ResponseWriter) (int, string, Answer) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="opsmantik stats"`)
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
	return http.StatusUnauthorized, "unauthorized", Answer{}
}

func (h *Handler) invalid(w http.ResponseWriter, err error) (int, string, Answer) {
	var ir *InvalidRangeError
	detail := err.Error()
	if errors.As(err, &ir) {
		detail = ir.Detail
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_range", Detail: detail})
	return http.StatusBadRequest, "invalid_range", Answer{}
}

// unavailable is a database failure: 503, try again later. The cause goes
// to the log, not to the caller.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) (int, string, Answer) {
	h.logger.ErrorContext(r.Context(), "stats: database", "err", err.Error())
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "unavailable", Detail: "the database did not answer; try again later"})
	return http.StatusServiceUnavailable, "unavailable", Answer{}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
