package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	origin    = "https://shop.example"
)

type testEnv struct {
	pool    *pgxpool.Pool
	handler *Handler
	server  *httptest.Server
	siteID  int64
}

func newEnv(t *testing.T, opts ...Option) *testEnv {
	t.Helper()
	pool := dbtest.New(t)
	site, err := sites.Add(context.Background(), pool, sites.NewSite{PublicID: "demo", Domains: []string{"shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	h := New(pool, append([]Option{WithClock(func() time.Time { return testNow })}, opts...)...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testEnv{pool: pool, handler: h, server: srv, siteID: site.ID}
}

// flushCounters writes the ingest counters the handler has gathered.
func (e *testEnv) flushCounters(t *testing.T) {
	t.Helper()
	if err := e.handler.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *testEnv) do(t *testing.T, method string, body []byte, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.server.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("User-Agent", browserUA)
	req.Header.Set("Origin", origin)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return r
}

func (e *testEnv) post(t *testing.T, body []byte) response {
	return e.do(t, http.MethodPost, body, nil)
}

func (e *testEnv) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// padTo grows a body to exactly n bytes with a long title (JSON stays valid).
func padTo(t *testing.T, n int) []byte {
	t.Helper()
	base := body(t, map[string]any{"events": []any{event(1, "pageview", testNow, map[string]any{"title": ""})}})
	pad := n - len(base)
	if pad < 0 {
		t.Fatal("base body too big")
	}
	out := bytes.Replace(base, []byte(`"title":""`), []byte(`"title":"`+strings.Repeat("x", pad)+`"`), 1)
	if len(out) != n {
		t.Fatalf("padded to %d, want %d", len(out), n)
	}
	return out
}

func TestResponses(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		method string
		body   []byte
		header map[string]string
		status int
		error  string
	}{
		{"a valid batch", "POST", body(t, nil), nil, 200, ""},
		{"JSON content type", "POST", body(t, nil), map[string]string{"Content-Type": "application/json"}, 200, ""},
		{"no content type", "POST", body(t, nil), map[string]string{"Content-Type": ""}, 200, ""},
		{"no Origin (server to server)", "POST", body(t, nil), map[string]string{"Origin": ""}, 200, ""},
		{"a subdomain of the site's domain", "POST", body(t, nil), map[string]string{"Origin": "https://www.shop.example:8443"}, 200, ""},
		{"body of exactly 64 KiB", "POST", padTo(t, MaxBodyBytes), nil, 200, ""},
		{"a bot", "POST", body(t, nil), map[string]string{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, 200, ""},
		{"broken JSON", "POST", []byte(`{"v":1`), nil, 400, "invalid_json"},
		{"invalid UTF-8", "POST", []byte("{\"v\":1,\"site\":\"\xc3\x28\"}"), nil, 400, "invalid_json"},
		{"missing fields", "POST", []byte(`{"v":1}`), nil, 400, "invalid_payload"},
		{"wrong types", "POST", body(t, map[string]any{"events": map[string]any{}}), nil, 400, "invalid_payload"},
		{"non-UUID session id", "POST", body(t, map[string]any{"sid": "abc"}), nil, 400, "invalid_payload"},
		{"unknown site", "POST", body(t, map[string]any{"site": "nope"}), nil, 403, "unknown_site"},
		{"foreign origin", "POST", body(t, nil), map[string]string{"Origin": "https://evil.example"}, 403, "origin_not_allowed"},
		{"look-alike origin", "POST", body(t, nil), map[string]string{"Origin": "https://notshop.example"}, 403, "origin_not_allowed"},
		{"opaque origin", "POST", body(t, nil), map[string]string{"Origin": "null"}, 403, "origin_not_allowed"},
		{"body one byte past 64 KiB", "POST", padTo(t, MaxBodyBytes+1), nil, 413, "payload_too_large"},
		{"101 events", "POST", body(t, map[string]any{"events": manyEvents(101)}), nil, 413, "payload_too_large"},
		{"form content type", "POST", body(t, nil), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"PUT", "PUT", body(t, nil), nil, 405, "method_not_allowed"},
		{"DELETE", "DELETE", nil, nil, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, c.method, c.body, c.header)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			if c.error == "" {
				if r.body["ok"] != true {
					t.Fatalf("body %s", r.raw)
				}
				return
			}
			if r.body["ok"] != false || r.body["error"] != c.error {
				t.Fatalf("body %s, want error %s", r.raw, c.error)
			}
			if c.status == 405 && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	// Every request was counted: the 6 stored from browsers as requests (the
	// error rate's attempts), the bot's apart, and the 12 refused apart.
	var requests, refused, bots int
	e.flushCounters(t)
	err := e.pool.QueryRow(context.Background(), `SELECT sum(requests), sum(rejected_requests), sum(bot_requests) FROM ingest_counters`).Scan(&requests, &refused, &bots)
	if err != nil {
		t.Fatal(err)
	}
	if requests != 6 || refused != 12 || bots != 1 {
		t.Fatalf("counters: %d requests, %d refused, %d bots", requests, refused, bots)
	}
}

func TestAcceptedBatchAnswer(t *testing.T) {
	e := newEnv(t)
	evs := []any{
		event(1, "pageview", testNow, nil),
		event(2, "heartbeat", testNow, map[string]any{"active_ms": 5000, "scroll": 30}),
		event(3, "pageview", testNow.Add(time.Hour), nil),
		event(4, "phone_click", testNow, map[string]any{"target": "+905551112233"}),
	}
	r := e.post(t, body(t, map[string]any{"events": evs}))
	if r.status != 200 || r.body["accepted"] != 3.0 || r.body["duplicates"] != 0.0 {
		t.Fatalf("first delivery: %d %s", r.status, r.raw)
	}
	rej := r.body["rejected"].([]any)
	if len(rej) != 1 || rej[0].(map[string]any)["index"] != 2.0 || rej[0].(map[string]any)["reason"] != "ts_out_of_range" {
		t.Fatalf("rejected = %v", rej)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Fatalf("Access-Control-Allow-Origin = %q", got)
	}
	// Delivered again: the heartbeat is accepted again (it only merges), the
	// two events are duplicates.
	r = e.post(t, body(t, map[string]any{"events": evs}))
	if r.body["accepted"] != 1.0 || r.body["duplicates"] != 2.0 {
		t.Fatalf("second delivery: %s", r.raw)
	}
	if n := e.count(t, `SELECT count(*) FROM events`); n != 2 {
		t.Fatalf("%d event rows, want 2 (heartbeats are not stored)", n)
	}
	// A batch whose every event is refused is answered 200 and stores nothing.
	r = e.post(t, body(t, map[string]any{"sid": "0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a02", "events": []any{event(9, "pageview", testNow.Add(-8*24*time.Hour), nil)}}))
	if r.status != 200 || r.body["accepted"] != 0.0 || len(r.body["rejected"].([]any)) != 1 {
		t.Fatalf("all rejected: %s", r.raw)
	}
	if n := e.count(t, `SELECT count(*) FROM sessions`); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	var accepted, dups, rejected int
	e.flushCounters(t)
	if err := e.pool.QueryRow(context.Background(), `SELECT sum(events_accepted), sum(events_duplicate), sum(events_rejected) FROM ingest_counters`).Scan(&accepted, &dups, &rejected); err != nil {
		t.Fatal(err)
	}
	if accepted != 4 || dups != 2 || rejected != 3 {
		t.Fatalf("counters accepted %d duplicate %d rejected %d", accepted, dups, rejected)
	}
}

func TestBotSessionsAreFlaggedAndNeverScored(t *testing.T) {
	e := newEnv(t)
	evs := []any{event(1, "phone_click", testNow, nil), event(2, "form_submit", testNow, nil)}
	r := e.do(t, "POST", body(t, map[string]any{"events": evs}), map[string]string{"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var bot bool
	var score int
	if err := e.pool.QueryRow(context.Background(), `SELECT is_bot, lead_score FROM sessions`).Scan(&bot, &score); err != nil {
		t.Fatal(err)
	}
	if !bot || score != 0 {
		t.Fatalf("bot session: is_bot %v, lead_score %d", bot, score)
	}
}

func TestHealthProbe(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", nil, nil)
	if r.status != 200 || r.body["ok"] != true || r.header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("GET: %d %s %v", r.status, r.raw, r.header)
	}
	e.flushCounters(t)
	if n := e.count(t, `SELECT count(*) FROM ingest_counters`); n != 0 {
		t.Fatal("the probe wrote counters")
	}
	// A database that does not answer gives 503.
	down, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	srv := httptest.NewServer(New(down))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(raw), "database_unreachable") {
		t.Fatalf("GET with the database down: %d %s", resp.StatusCode, raw)
	}
	// And a batch that cannot be stored is answered 5xx, so the client keeps it.
	resp, err = http.Post(srv.URL, "text/plain", bytes.NewReader(body(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("POST with the database down: %d", resp.StatusCode)
	}
}

func TestPreflight(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		origin, query string
		status        int
	}{
		{"https://shop.example", "", 204},
		{"https://m.shop.example", "?site=demo", 204},
		{"https://evil.example", "", 403},
		{"https://shop.example", "?site=other", 403},
		{"", "", 403},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodOptions, e.server.URL+c.query, nil)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Fatalf("OPTIONS from %q%s: %d, want %d", c.origin, c.query, resp.StatusCode, c.status)
		}
		if c.status == 204 {
			if resp.Header.Get("Access-Control-Allow-Origin") != c.origin || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || resp.Header.Get("Access-Control-Allow-Headers") == "" {
				t.Fatalf("preflight headers: %v", resp.Header)
			}
		} else if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("refused preflight allowed the origin")
		}
	}
}

func clientKeyOf(ip string) string {
	return ClientKey(&http.Request{RemoteAddr: ip + ":1234"})
}

var (
	jsonUnmarshal = json.Unmarshal
	jsonMarshal   = json.Marshal
)

// TestErrorRateCounters: the counters the watchtower's error rate is made of.
// Browsers' requests and their reported failures count; bots' do not; a
// request the server failed to store counts as a server failure.
func TestErrorRateCounters(t *testing.T) {
	e := newEnv(t)
	counters := func() (requests, serverFailures, clientFailures, bots int) {
		t.Helper()
		e.flushCounters(t)
		err := e.pool.QueryRow(context.Background(), `SELECT coalesce(sum(requests), 0), coalesce(sum(server_failures), 0),
			coalesce(sum(client_failures), 0), coalesce(sum(bot_requests), 0) FROM ingest_counters`).Scan(&requests, &serverFailures, &clientFailures, &bots)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if r := e.post(t, body(t, map[string]any{"failures": 3})); r.status != 200 {
		t.Fatal(r.raw)
	}
	r := e.do(t, "POST", body(t, map[string]any{"failures": 5, "sid": "0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a09"}), map[string]string{"User-Agent": "curl/8.5.0"})
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	// A batch with nothing storable is answered, but its failures are not
	// counted: only requests whose batch was stored may report failures.
	if r := e.post(t, body(t, map[string]any{"failures": 2, "events": []any{event(7, "pageview", testNow.Add(-30*24*time.Hour), nil)}})); r.status != 200 {
		t.Fatal(r.raw)
	}
	if req, sf, cf, bots := counters(); req != 2 || sf != 0 || cf != 3 || bots != 1 {
		t.Fatalf("requests %d, server failures %d, client failures %d, bots %d; want 2, 0, 3, 1", req, sf, cf, bots)
	}
	if n := e.count(t, `SELECT coalesce(sum(failures), 0)::int FROM ingest_client_failures WHERE client = $1`, clientKeyOf("127.0.0.1")); n != 3 {
		t.Fatalf("per-client failures %d, want 3", n)
	}
	// The events table is gone: storing fails, the client is told to retry,
	// and the failure is counted.
	if _, err := e.pool.Exec(context.Background(), `ALTER TABLE events RENAME TO events_away`); err != nil {
		t.Fatal(err)
	}
	if r := e.post(t, body(t, map[string]any{"events": []any{event(8, "pageview", testNow, nil)}})); r.status != 503 || r.body["error"] != "storage_unavailable" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if req, sf, _, _ := counters(); req != 3 || sf != 1 {
		t.Fatalf("after a server failure: requests %d, server failures %d; want 3, 1", req, sf)
	}
}
