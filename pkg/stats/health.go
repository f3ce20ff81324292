package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/sites"
)

// The dashboard's two data-health answers beside /api/stats: the Google Ads
// conversion outbox (sql/0006) and the latest audit run's findings. Same key,
// same CORS, same errors as /api/stats; a site only ever sees its own rows.

// RecentConversions is how many of the latest outbox rows the answer lists.
const RecentConversions = 20

// ConversionCounts are the site's Google Ads outbox rows by status.
type ConversionCounts struct {
	Uploaded  int64 `json:"uploaded"`
	Pending   int64 `json:"pending"`
	Published int64 `json:"published"`
	Failed    int64 `json:"failed"`
	// DryRun counts the rows of any status that were (or will be) sent as
	// validate-only uploads: Google Ads checks them but records nothing.
	DryRun int64 `json:"dry_run"`
}

// ConversionFailure is one error code of the site's failed rows.
type ConversionFailure struct {
	Code    string `json:"code"`
	Message string `json:"message"` // the latest row's message for that code
	Count   int64  `json:"count"`
	LastAt  string `json:"last_at"`
}

// ConversionRow is one recent outbox row, without the click id itself.
type ConversionRow struct {
	ConvertedAt  string  `json:"converted_at"`
	Status       string  `json:"status"`
	ClickIDType  string  `json:"click_id_type"`
	Value        float64 `json:"value"`
	Currency     string  `json:"currency"`
	DryRun       bool    `json:"dry_run"`
	Attempts     int     `json:"attempts"`
	ErrorCode    *string `json:"last_error_code"`
	ErrorMessage *string `json:"last_error_message"`
	UploadedAt   *string `json:"uploaded_at"`
}

// ConversionsAnswer is GET /api/stats/conversions's 200 body.
type ConversionsAnswer struct {
	OK       bool                `json:"ok"`
	Site     string              `json:"site"`
	Counts   ConversionCounts    `json:"counts"`
	Failures []ConversionFailure `json:"failures"`
	Recent   []ConversionRow     `json:"recent"`
}

const conversionCountsQuery = `
SELECT count(*) FILTER (WHERE status = 'uploaded'),
       count(*) FILTER (WHERE status = 'pending'),
       count(*) FILTER (WHERE status = 'published'),
       count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE dry_run)
FROM conversions WHERE site_id = $1 AND destination = 'google_ads'`

const conversionFailuresQuery = `
SELECT coalesce(last_error_code, 'unknown'),
       (array_agg(coalesce(last_error_message, '') ORDER BY updated_at DESC))[1],
       count(*),
       to_char(max(updated_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM conversions
WHERE site_id = $1 AND destination = 'google_ads' AND status = 'failed'
GROUP BY 1 ORDER BY count(*) DESC, 1`

const recentConversionsQuery = `
SELECT to_char(converted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), status, click_id_type,
       value::float8, currency, dry_run, attempts, last_error_code, last_error_message,
       to_char(uploaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM conversions
WHERE site_id = $1 AND destination = 'google_ads'
ORDER BY converted_at DESC, id LIMIT $2`

// Conversions reads the site's Google Ads conversion status.
func (s *Service) Conversions(ctx context.Context, siteID int64, publicID string) (ConversionsAnswer, error) {
	a := ConversionsAnswer{OK: true, Site: publicID, Failures: []ConversionFailure{}, Recent: []ConversionRow{}}
	c := &a.Counts
	if err := s.db.QueryRow(ctx, conversionCountsQuery, siteID).Scan(&c.Uploaded, &c.Pending, &c.Published, &c.Failed, &c.DryRun); err != nil {
		return a, fmt.Errorf("conversion counts: %w", err)
	}
	rows, err := s.db.Query(ctx, conversionFailuresQuery, siteID)
	if err != nil {
		return a, fmt.Errorf("conversion failures: %w", err)
	}
	a.Failures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConversionFailure, error) {
		var f ConversionFailure
		return f, r.Scan(&f.Code, &f.Message, &f.Count, &f.LastAt)
	})
	if err != nil {
		return a, fmt.Errorf("conversion failures: %w", err)
	}
	rows, err = s.db.Query(ctx, recentConversionsQuery, siteID, RecentConversions)
	if err != nil {
		return a, fmt.Errorf("recent conversions: %w", err)
	}
	a.Recent, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConversionRow, error) {
		var c ConversionRow
		return c, r.Scan(&c.ConvertedAt, &c.Status, &c.ClickIDType, &c.Value, &c.Currency, &c.DryRun, &c.Attempts, &c.ErrorCode, &c.ErrorMessage, &c.UploadedAt)
	})
	if err != nil {
		return a, fmt.Errorf("recent conversions: %w", err)
	}
	return a, nil
}

// AuditRun is the latest finished audit run that covered the site.
type AuditRun struct {
	ID               int64   `json:"id"`
	Status           string  `json:"status"`
	WindowStart      string  `json:"window_start"`
	WindowEnd        string  `json:"window_end"`
	FinishedAt       string  `json:"finished_at"`
	ThresholdPercent float64 `json:"threshold_percent"`
}

// AuditFinding is one check's result for the site in that run.
type AuditFinding struct {
	Code         string   `json:"code"`
	Name         string   `json:"name"`
	Count        int64    `json:"count"`
	Denominator  int64    `json:"denominator"`
	RatioPercent float64  `json:"ratio_percent"`
	Alarm        bool     `json:"alarm"`
	SampleIDs    []string `json:"sample_ids"`
}

// AuditAnswer is GET /api/stats/audit's 200 body. Run is null when no audit
// has covered the site yet (or the audit tables do not exist in this
// database).
type AuditAnswer struct {
	OK       bool           `json:"ok"`
	Site     string         `json:"site"`
	Run      *AuditRun      `json:"run"`
	Findings []AuditFinding `json:"findings"`
}

// A run covers the site when it was for the site alone or for every site
// (site_id NULL). The audit tables come with a later migration: to_regclass
// says whether they are there.
const auditTablesQuery = `SELECT to_regclass('audit_runs') IS NOT NULL AND to_regclass('audit_findings') IS NOT NULL`

const latestAuditRunQuery = `
SELECT id, status,
       to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       threshold_percent
FROM audit_runs
WHERE (site_id = $1 OR site_id IS NULL) AND finished_at IS NOT NULL
ORDER BY finished_at DESC, id DESC LIMIT 1`

const auditFindingsQuery = `
SELECT code, name, count, denominator, ratio_percent, alarm, sample_ids
FROM audit_findings WHERE run_id = $1 AND site_id = $2
ORDER BY alarm DESC, ratio_percent DESC, code`

// Audit reads the latest audit run that covered the site and its findings
// for the site.
func (s *Service) Audit(ctx context.Context, siteID int64, publicID string) (AuditAnswer, error) {
	a := AuditAnswer{OK: true, Site: publicID, Findings: []AuditFinding{}}
	var exists bool
	if err := s.db.QueryRow(ctx, auditTablesQuery).Scan(&exists); err != nil {
		return a, fmt.Errorf("audit tables: %w", err)
	}
	if !exists {
		return a, nil
	}
	var run AuditRun
	err := s.db.QueryRow(ctx, latestAuditRunQuery, siteID).Scan(&run.ID, &run.Status, &run.WindowStart, &run.WindowEnd, &run.FinishedAt, &run.ThresholdPercent)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("latest audit run: %w", err)
	}
	a.Run = &run
	rows, err := s.db.Query(ctx, auditFindingsQuery, run.ID, siteID)
	if err != nil {
		return a, fmt.Errorf("audit findings: %w", err)
	}
	a.Findings, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditFinding, error) {
		var f AuditFinding
		return f, r.Scan(&f.Code, &f.Name, &f.Count, &f.Denominator, &f.RatioPercent, &f.Alarm, &f.SampleIDs)
	})
	if err != nil {
		return a, fmt.Errorf("audit findings: %w", err)
	}
	return a, nil
}

// healthHandler serves one of the two answers with /api/stats's rules.
type healthHandler struct {
	h    *Handler
	name string
	read func(ctx context.Context, siteID int64, publicID string) (any, error)
}

// ConversionsHandler serves GET /api/stats/conversions?site=….
func (h *Handler) ConversionsHandler() http.Handler {
	return healthHandler{h: h, name: "stats_conversions", read: func(ctx context.Context, id int64, pub string) (any, error) {
		return h.svc.Conversions(ctx, id, pub)
	}}
}

// AuditHandler serves GET /api/stats/audit?site=….
func (h *Handler) AuditHandler() http.Handler {
	return healthHandler{h: h, name: "stats_audit", read: func(ctx context.Context, id int64, pub string) (any, error) {
		return h.svc.Audit(ctx, id, pub)
	}}
}

func (hh healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := hh.h
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet:
	case http.MethodOptions:
		preflight(w)
		return
	default:
		w.Header().Set("Allow", "GET, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", Detail: "use GET"})
		return
	}
	start := time.Now()
	q := r.URL.Query()
	status, code := http.StatusOK, ""
	defer func() {
		h.logger.LogAttrs(r.Context(), levelOf(status), hh.name, slog.Int("status", status),
			slog.String("site", q.Get("site")), slog.String("error", code),
			slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
	}()
	key, ok := bearer(r.Header.Get("Authorization"))
	if !ok || len(q["site"]) != 1 {
		status, code, _ = h.unauthorized(w)
		return
	}
	siteID, err := h.auth(r.Context(), q.Get("site"), key)
	if errors.Is(err, sites.ErrUnauthorized) {
		status, code, _ = h.unauthorized(w)
		return
	}
	if err == nil {
		var body any
		if body, err = hh.read(r.Context(), siteID, q.Get("site")); err == nil {
			writeJSON(w, http.StatusOK, body)
			return
		}
	}
	status, code, _ = h.unavailable(w, r, err)
}
