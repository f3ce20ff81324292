package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/dashboard"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// healthSite is a site with its key, for the two data-health endpoints.
type healthSite struct {
	id       int64
	publicID string
	key      string
}

// healthServer serves stats.Site(dashboard.Install{}) (the stats function's whole Function
// URL) over a fresh database with two sites, a and b.
func healthServer(t *testing.T) (*pgxpool.Pool, *httptest.Server, http.Handler, healthSite, healthSite) {
	t.Helper()
	pool := dbtest.New(t)
	mk := func(publicID string) healthSite {
		s := addSite(t, pool, publicID, "Europe/Istanbul")
		key, err := sites.RotateKey(context.Background(), pool, publicID)
		if err != nil {
			t.Fatal(err)
		}
		return healthSite{s.ID, publicID, key}
	}
	a, b := mk("a"), mk("b")
	h := stats.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil))).Site(dashboard.Install{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return pool, srv, h, a, b
}

type outboxRow struct {
	status, code, message string
	dryRun                bool
	destination           string
	minutesAgo            int
}

func insertConversions(t *testing.T, pool *pgxpool.Pool, siteID int64, rows ...outboxRow) {
	t.Helper()
	for _, r := range rows {
		if r.destination == "" {
			r.destination = "google_ads"
		}
		var code, msg *string
		if r.code != "" {
			code, msg = &r.code, &r.message
		}
		_, err := pool.Exec(context.Background(), `
			INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, value, currency,
			                         converted_at, status, attempts, last_error_code, last_error_message, dry_run, updated_at)
			VALUES ($1, $2, $3, 'gclid', $4, 12.5, 'EUR', now() - make_interval(mins => $5::int), $6, 1, $7, $8, $9,
			        now() - make_interval(mins => $5::int))`,
			siteID, uuid.NewString(), r.destination, "gclid-"+uuid.NewString(), r.minutesAgo, r.status, code, msg, r.dryRun)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url, key string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestConversionsAnswer(t *testing.T) {
	t.Parallel()
	pool, srv, _, a, b := healthServer(t)
	insertConversions(t, pool, a.id,
		outboxRow{status: "uploaded", minutesAgo: 50},
		outboxRow{status: "uploaded", dryRun: true, minutesAgo: 40},
		outboxRow{status: "pending", minutesAgo: 30},
		outboxRow{status: "published", minutesAgo: 20},
		outboxRow{status: "failed", code: "INVALID_GCLID", message: "old message", minutesAgo: 15},
		outboxRow{status: "failed", code: "INVALID_GCLID", message: "newest message", minutesAgo: 10},
		outboxRow{status: "failed", code: "CONVERSION_PRECEDES_CLICK", message: "too early", minutesAgo: 5},
		// GA4 rows are not Google Ads status.
		outboxRow{status: "failed", code: "GA4_ERROR", message: "ga4", destination: "ga4", minutesAgo: 1},
	)
	insertConversions(t, pool, b.id, outboxRow{status: "failed", code: "B_ONLY", message: "b's"}, outboxRow{status: "uploaded"})

	status, hdr, body := get(t, srv.URL+"/api/stats/conversions?site=a", a.key)
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("status %d, ACAO %q: %s", status, hdr.Get("Access-Control-Allow-Origin"), body)
	}
	var got stats.ConversionsAnswer
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if want := (stats.ConversionCounts{Uploaded: 2, Pending: 1, Published: 1, Failed: 3, DryRun: 1}); got.Counts != want {
		t.Errorf("counts %+v, want %+v", got.Counts, want)
	}
	var codes []string
	for _, f := range got.Failures {
		codes = append(codes, fmt.Sprintf("%s×%d:%s", f.Code, f.Count, f.Message))
	}
	if want := []string{"INVALID_GCLID×2:newest message", "CONVERSION_PRECEDES_CLICK×1:too early"}; !reflect.DeepEqual(codes, want) {
		t.Errorf("failures %q, want %q", codes, want)
	}
	if len(got.Recent) != 7 || got.Recent[0].Status != "failed" || got.Recent[6].Status != "uploaded" || got.Recent[5].DryRun != true {
		t.Errorf("recent rows, newest first, want 7 Google Ads rows: %+v", got.Recent)
	}
	if strings.Contains(body, "gclid-") || strings.Contains(body, "B_ONLY") || strings.Contains(body, "GA4_ERROR") {
		t.Errorf("the answer shows a click id, b's rows or GA4 rows: %s", body)
	}
}

func TestConversionsRecentLimit(t *testing.T) {
	t.Parallel()
	pool, srv, _, a, _ := healthServer(t)
	for _, n := range []int{stats.RecentConversions, stats.RecentConversions + 1} {
		if _, err := pool.Exec(context.Background(), `DELETE FROM conversions`); err != nil {
			t.Fatal(err)
		}
		rows := make([]outboxRow, n)
		for i := range rows {
			rows[i] = outboxRow{status: "pending", minutesAgo: i}
		}
		insertConversions(t, pool, a.id, rows...)
		_, _, body := get(t, srv.URL+"/api/stats/conversions?site=a", a.key)
		var got stats.ConversionsAnswer
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if got.Counts.Pending != int64(n) || len(got.Recent) != stats.RecentConversions {
			t.Errorf("%d rows: pending %d, recent %d; want %d and %d", n, got.Counts.Pending, len(got.Recent), n, stats.RecentConversions)
		}
	}
}

func TestHealthEndpointsAuthAndCORS(t *testing.T) {
	t.Parallel()
	_, srv, _, a, b := healthServer(t)
	for _, path := range []string{"/api/stats/conversions", "/api/stats/audit"} {
		for _, c := range []struct {
			name, query, key string
			status           int
		}{
			{"own key", "site=a", a.key, 200},
			{"no key", "site=a", "", 401},
			{"b's key for a", "site=a", b.key, 401},
			{"a wrong key", "site=a", a.key + "x", 401},
			{"an unknown site", "site=zzz", a.key, 401},
			{"no site", "", a.key, 401},
			{"site twice", "site=a&site=a", a.key, 401},
		} {
			status, hdr, body := get(t, srv.URL+path+"?"+c.query, c.key)
			if status != c.status || hdr.Get("Access-Control-Allow-Origin") != "*" || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %d (ACAO %q) %s, want %d", path, c.name, status, hdr.Get("Access-Control-Allow-Origin"), body, c.status)
			}
			if c.status == 401 && (!strings.Contains(body, `"error":"unauthorized"`) || hdr.Get("WWW-Authenticate") == "") {
				t.Errorf("%s %s: body %s", path, c.name, body)
			}
		}
		req, _ := http.NewRequest("OPTIONS", srv.URL+path+"?site=a", nil)
		req.Header.Set("Origin", "https://elsewhere.example")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("%s preflight: %d %v", path, resp.StatusCode, resp.Header)
		}
		req, _ = http.NewRequest("POST", srv.URL+path+"?site=a", nil)
		req.Header.Set("Authorization", "Bearer "+a.key)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("%s POST: %d, Allow %q", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

func audit(t *testing.T, srv *httptest.Server, s healthSite) stats.AuditAnswer {
	t.Helper()
	status, _, body := get(t, srv.URL+"/api/stats/audit?site="+s.publicID, s.key)
	if status != 200 {
		t.Fatalf("audit: %d %s", status, body)
	}
	var a stats.AuditAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuditAnswer(t *testing.T) {
	t.Parallel()
	pool, srv, _, a, b := healthServer(t)
	ctx := context.Background()
	// The audit's tables (sql/0008) with no run yet.
	if got := audit(t, srv, a); got.Run != nil || len(got.Findings) != 0 || !got.OK {
		t.Fatalf("no run yet: %+v", got)
	}
	run := func(site *int64, finishedMinutesAgo *int) int64 {
		var id int64
		var fin any
		if finishedMinutesAgo != nil {
			fin = *finishedMinutesAgo
		}
		err := pool.QueryRow(ctx, `
			INSERT INTO audit_runs (trigger, site_id, window_start, window_end, threshold_percent, started_at, finished_at, status)
			VALUES ('schedule', $1, now() - interval '1 day', now(), 1.5, now() - interval '2 hours',
			        now() - make_interval(mins => $2::int), CASE WHEN $2::int IS NULL THEN 'running' ELSE 'ok' END)
			RETURNING id`, site, fin).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	finding := func(runID, siteID int64, code string, n int64, alarm bool) {
		_, err := pool.Exec(ctx, `INSERT INTO audit_findings VALUES ($1, $2::text, 'check ' || $2::text, $3, $4::bigint, 1000, 100.0 * $4::bigint / 1000, $5, ARRAY['x'])`,
			runID, code, siteID, n, alarm)
		if err != nil {
			t.Fatal(err)
		}
	}
	ago := func(m int) *int { return &m }
	old := run(nil, ago(120))
	finding(old, a.id, "AUD001", 5, false)
	latest := run(nil, ago(10)) // every site
	finding(latest, a.id, "AUD002", 3, false)
	finding(latest, a.id, "AUD003", 40, true)
	finding(latest, b.id, "AUD004", 9, true)
	run(&b.id, ago(1)) // b's own later run, clean
	run(nil, nil)      // still running: not the latest finished

	got := audit(t, srv, a)
	if got.Run == nil || got.Run.ID != latest || got.Run.Status != "ok" || got.Run.ThresholdPercent != 1.5 {
		t.Fatalf("a's run: %+v, want run %d", got.Run, latest)
	}
	var codes []string
	for _, f := range got.Findings {
		codes = append(codes, f.Code)
	}
	if want := []string{"AUD003", "AUD002"}; !reflect.DeepEqual(codes, want) {
		t.Errorf("a's findings %v, want %v (alarms first, only a's)", codes, want)
	}
	if gb := audit(t, srv, b); gb.Run == nil || gb.Run.ID == latest || len(gb.Findings) != 0 {
		t.Errorf("b's latest run is its own clean one: %+v", gb)
	}
}

func TestSiteServesPageAndAPI(t *testing.T) {
	t.Parallel()
	_, srv, h, a, _ := healthServer(t)
	for _, path := range []string{"/", "/dashboard"} {
		status, hdr, body := get(t, srv.URL+path, "")
		if status != 200 || hdr.Get("Content-Type") != "text/html; charset=utf-8" || body != string(dashboard.Page()) {
			t.Errorf("GET %s: %d %q, %d bytes; want the page", path, status, hdr.Get("Content-Type"), len(body))
		}
	}
	// The documented form, the stats function's URL with ?site=, is the API.
	for _, path := range []string{"/?site=a&period=7d", "/api/stats?site=a&period=7d"} {
		status, _, body := get(t, srv.URL+path, a.key)
		if status != 200 || !strings.Contains(body, `"site":"a"`) || !strings.Contains(body, `"served_from"`) {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
	if status, _, body := get(t, srv.URL+"/?site=a&period=7d", ""); status != 401 {
		t.Errorf("GET /?site= without a key: %d %s, want 401", status, body)
	}
	// Behind the Function URL adapter, as Lambda serves it.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	ev, err := lambdatest.FunctionURLEvent(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	var in events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	out, err := lambdahost.FunctionURLHandler(h)(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 200 || !strings.Contains(out.Body+out.Headers["Content-Type"], "text/html") {
		t.Errorf("Lambda GET /: %d %v", out.StatusCode, out.Headers)
	}
}

func TestHealthDatabaseDownIs503(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/x?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	h := stats.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil))).Site(dashboard.Install{})
	for _, path := range []string{"/api/stats/conversions?site=a", "/api/stats/audit?site=a"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer k")
		h.ServeHTTP(rec, req)
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"error":"unavailable"`) {
			t.Errorf("%s: %d %s, want 503 unavailable", path, rec.Code, rec.Body)
		}
	}
}
