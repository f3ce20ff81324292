package stats_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

var handNow = time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)

// endpoint is the handler mounted as `opsmantik dev` mounts it, over the
// hand-computed site, and the same handler behind the Function URL adapter.
type endpoint struct {
	pool   *pgxpool.Pool
	site   int64
	key    string
	srv    *httptest.Server
	lambda func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
}

func newEndpoint(t *testing.T) *endpoint {
	t.Helper()
	pool := dbtest.New(t)
	e := &endpoint{pool: pool, site: handSite(t, pool)}
	var err error
	if e.key, err = sites.RotateKey(context.Background(), pool, "hand"); err != nil {
		t.Fatal(err)
	}
	refresh(t, pool)
	h := stats.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil)), stats.WithClock(fixedClock(handNow)))
	mux := http.NewServeMux()
	mux.Handle("/api/stats", h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.lambda = lambdahost.FunctionURLHandler(h)
	return e
}

type response struct {
	status int
	header http.Header
	body   string
}

func (e *endpoint) request(t *testing.T, method, query string, header map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/api/stats?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

// do sends a request over HTTP to the dev-style server.
func (e *endpoint) do(t *testing.T, method, query string, header map[string]string) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(e.request(t, method, query, header))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// viaLambda sends the same request as a Function URL event, decoded from
// JSON as the Lambda runtime decodes it.
func (e *endpoint) viaLambda(t *testing.T, method, query string, header map[string]string) response {
	t.Helper()
	ev, err := lambdatest.FunctionURLEvent(e.request(t, method, query, header))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ev)
	var in events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	out, err := e.lambda(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	body := out.Body
	if out.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	h := http.Header{}
	for k, v := range out.Headers {
		h.Set(k, v)
	}
	for k, vs := range out.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return response{out.StatusCode, h, body}
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func TestEndpointAnswersTheSummary(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	res := e.do(t, "GET", "site=hand&from=2025-03-01&to=2025-03-04&device_type=mobile", bearer(e.key))
	if res.status != 200 || res.header.Get("Content-Type") != "application/json" || res.header.Get("Cache-Control") != "no-store" ||
		res.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %v %s", res.status, res.header, res.body)
	}
	var got stats.Answer
	if err := json.Unmarshal([]byte(res.body), &got); err != nil {
		t.Fatal(err)
	}
	want, err := stats.NewService(e.pool, stats.WithClock(fixedClock(handNow))).Summary(context.Background(), e.site,
		stats.Request{From: "2025-03-01", To: "2025-03-04", DeviceType: "mobile"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got.Totals.Sessions != 3 {
		t.Errorf("endpoint %+v\nservice %+v", got, want)
	}
	// The JSON has the contract's names and shape.
	var shape map[string]any
	_ = json.Unmarshal([]byte(res.body), &shape)
	for _, k := range []string{"ok", "site", "timezone", "currency", "from", "to", "totals", "days", "traffic_sources", "devices", "served_from"} {
		if _, ok := shape[k]; !ok {
			t.Errorf("the answer lacks %q: %s", k, res.body)
		}
	}
	if !strings.Contains(res.body, `"served_from":{"view_days":4,"live_days":0,"view_refreshed_at":"`) ||
		!strings.Contains(res.body, `{"date":"2025-03-01","sessions":1,"pageviews":3,"conversions":2,"converted_sessions":1,"qualified_leads":1,"avg_duration_s":85,"bounce_rate":0}`) {
		t.Errorf("body %s", res.body)
	}

	// Periods end today in the site's time zone (handNow is 18:00 in Istanbul).
	res = e.do(t, "GET", "site=hand&period=today", bearer(e.key))
	if res.status != 200 || !strings.Contains(res.body, `"from":"2025-03-04","to":"2025-03-04"`) {
		t.Errorf("today: %d %s", res.status, res.body)
	}
}

func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	ctx := context.Background()
	other, otherKey, err := sites.AddWithKey(ctx, e.pool, sites.NewSite{PublicID: "second", Domains: []string{"second.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sites.Add(ctx, e.pool, sites.NewSite{PublicID: "keyless", Domains: []string{"keyless.example"}}); err != nil {
		t.Fatal(err)
	}
	const unauthorized = `{"ok":false,"error":"unauthorized"}` + "\n"
	ok := "site=hand&period=7d"
	for _, c := range []struct {
		name   string
		query  string
		header map[string]string
	}{
		{"no Authorization header", ok, nil},
		{"an empty bearer token", ok, map[string]string{"Authorization": "Bearer "}},
		{"another scheme", ok, map[string]string{"Authorization": "Basic " + e.key}},
		{"the token without a scheme", ok, map[string]string{"Authorization": e.key}},
		{"a wrong key", ok, bearer(e.key + "x")},
		{"another site's key", ok, bearer(otherKey)},
		{"an unknown site", "site=nope&period=7d", bearer(e.key)},
		{"no site", "period=7d", bearer(e.key)},
		{"the site twice", "site=hand&site=hand&period=7d", bearer(e.key)},
		{"a site without a key", "site=keyless&period=7d", bearer(e.key)},
		{"a site without a key and no key", "site=keyless&period=7d", bearer("")},
	} {
		res := e.do(t, "GET", c.query, c.header)
		if res.status != 401 || res.body != unauthorized || res.header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q %v, want 401 %q", c.name, res.status, res.body, res.header, unauthorized)
		}
	}
	if res := e.do(t, "GET", "site=second&period=today", bearer(otherKey)); res.status != 200 || !strings.Contains(res.body, `"site":"second"`) {
		t.Errorf("the second site's own key: %d %s (site %d)", res.status, res.body, other.ID)
	}

	for _, c := range []struct {
		query  string
		detail string
	}{
		{"", "give from and to"},
		{"from=2025-03-01", "both from and to"},
		{"to=2025-03-01", "both from and to"},
		{"from=2025-3-01&to=2025-03-02", `from "2025-3-01" is not a date`},
		{"from=2025-02-29&to=2025-03-02", `from "2025-02-29" is not a date`},
		{"from=2025-03-01&to=tomorrow", `to "tomorrow" is not a date`},
		{"from=2025-03-01T00:00:00Z&to=2025-03-02", "is not a date"},
		{"from=2025-03-02&to=2025-03-01", "from 2025-03-02 is after to 2025-03-01"},
		{"from=2025-01-01&to=2026-02-05", "is 401 days; at most 400"},
		{"period=1y", `period "1y"`},
		{"period=", "give from and to"},
		{"period=7d&from=2025-03-01&to=2025-03-02", "either period or from and to"},
		{"period=7d&traffic_source=tiktok", `traffic_source "tiktok"`},
		{"period=7d&device_type=watch", `device_type "watch"`},
		{"period=7d&device_type=Mobile", `device_type "Mobile"`},
		{"from=2025-03-01&from=2025-03-02&to=2025-03-03", "from is given 2 times"},
	} {
		res := e.do(t, "GET", "site=hand&"+c.query, bearer(e.key))
		var body struct {
			OK     *bool  `json:"ok"`
			Error  string `json:"error"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal([]byte(res.body), &body); err != nil || res.status != 400 || body.OK == nil || *body.OK ||
			body.Error != "invalid_range" || !strings.Contains(body.Detail, c.detail) || res.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%q: %d %s, want 400 invalid_range with %q", c.query, res.status, res.body, c.detail)
		}
	}
	// At the edges: 400 days, empty filters, the first and the last dates.
	for _, q := range []string{"from=2025-01-01&to=2026-02-04", "period=90d&traffic_source=&device_type=", "from=2025-03-01&to=2025-03-01",
		"from=0001-01-01&to=0001-01-03", "from=9999-12-29&to=9999-12-31", "from=2026-12-25&to=2027-01-05"} {
		if res := e.do(t, "GET", "site=hand&"+q, bearer(e.key)); res.status != 200 {
			t.Errorf("%q: %d %s, want 200", q, res.status, res.body)
		}
	}

	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		res := e.do(t, m, ok, bearer(e.key))
		if res.status != 405 || res.header.Get("Allow") != "GET, OPTIONS" || res.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v %s, want 405", m, res.status, res.header, res.body)
		}
	}
}

func TestEndpointPreflight(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	for _, origin := range []string{"https://dashboard.example", "http://localhost:3000", "null"} {
		res := e.do(t, "OPTIONS", "site=hand&period=7d", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization",
		})
		allowHeaders := strings.ToLower(res.header.Get("Access-Control-Allow-Headers"))
		if res.status != 204 || res.header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(allowHeaders, "authorization") ||
			!strings.Contains(res.header.Get("Access-Control-Allow-Methods"), "GET") || res.header.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight from %s: %d %v", origin, res.status, res.header)
		}
		// The actual request from that origin may read the answer.
		res = e.do(t, "GET", "site=hand&period=7d", map[string]string{"Origin": origin, "Authorization": "Bearer " + e.key})
		if res.status != 200 || res.header.Get("Access-Control-Allow-Origin") != "*" || res.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("GET from %s: %d %v", origin, res.status, res.header)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	q := "site=hand&period=30d"
	if res := e.do(t, "GET", q, bearer(e.key)); res.status != 200 {
		t.Fatalf("first key: %d %s", res.status, res.body)
	}
	newKey, err := sites.RotateKey(context.Background(), e.pool, "hand")
	if err != nil {
		t.Fatal(err)
	}
	if newKey == e.key || !strings.HasPrefix(newKey, sites.APIKeyPrefix) || len(newKey) != len(sites.APIKeyPrefix)+43 {
		t.Fatalf("new key %q", newKey)
	}
	if res := e.do(t, "GET", q, bearer(e.key)); res.status != 401 {
		t.Errorf("the old key after rotation: %d %s", res.status, res.body)
	}
	if res := e.do(t, "GET", q, bearer(newKey)); res.status != 200 {
		t.Errorf("the new key: %d %s", res.status, res.body)
	}
	if res := e.do(t, "GET", q, map[string]string{"Authorization": "bearer   " + newKey + "  "}); res.status != 200 {
		t.Errorf("a lower-case scheme and spaces: %d %s", res.status, res.body)
	}
	// Only the hash is stored.
	var stored string
	if err := e.pool.QueryRow(context.Background(), `SELECT stats_api_key_hash FROM sites WHERE public_id = 'hand'`).Scan(&stored); err != nil ||
		stored != sites.HashAPIKey(newKey) || strings.Contains(stored, newKey) {
		t.Errorf("stored %q, %v", stored, err)
	}
	if _, err := sites.RotateKey(context.Background(), e.pool, "nope"); err != sites.ErrNotFound {
		t.Errorf("rotating an unknown site: %v", err)
	}
}

// TestLambdaAnswersAsDev: the Function URL adapter gives the same status,
// headers and body as the server `opsmantik dev` runs.
func TestLambdaAnswersAsDev(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	for _, c := range []struct {
		method, query string
		header        map[string]string
	}{
		{"GET", "site=hand&from=2025-03-01&to=2025-03-04", bearer(e.key)},
		{"GET", "site=hand&period=7d&traffic_source=direct&device_type=desktop", bearer(e.key)},
		{"GET", "site=hand&period=30d", nil},
		{"GET", "site=hand&period=2w", bearer(e.key)},
		{"OPTIONS", "", map[string]string{"Origin": "https://x.example", "Access-Control-Request-Headers": "authorization"}},
		{"DELETE", "site=hand", bearer(e.key)},
	} {
		dev := e.do(t, c.method, c.query, c.header)
		fn := e.viaLambda(t, c.method, c.query, c.header)
		if dev.status != fn.status || dev.body != fn.body {
			t.Errorf("%s %s: dev %d %s\nlambda %d %s", c.method, c.query, dev.status, dev.body, fn.status, fn.body)
		}
		for _, h := range []string{"Content-Type", "Cache-Control", "Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Allow", "WWW-Authenticate"} {
			if dev.header.Get(h) != fn.header.Get(h) {
				t.Errorf("%s %s: %s dev %q, lambda %q", c.method, c.query, h, dev.header.Get(h), fn.header.Get(h))
			}
		}
	}
}

// TestDatabaseDownIs503: a database that does not answer is "try again
// later", never an error of the caller's; a request without a key is
// refused without the database.
func TestDatabaseDownIs503(t *testing.T) {
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
	h := stats.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	for _, c := range []struct {
		auth   string
		status int
		error  string
	}{{"Bearer k", 503, "unavailable"}, {"", 401, "unauthorized"}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/stats?site=hand&period=7d", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), `"error":"`+c.error+`"`) {
			t.Errorf("auth %q: %d %s, want %d %s", c.auth, rec.Code, rec.Body, c.status, c.error)
		}
	}
}
