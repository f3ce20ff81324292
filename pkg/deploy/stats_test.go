package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/lambdatest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// statsCase: the dashboard endpoint answers a site's figures for its API
// key (yesterday from the view, today live), refuses a wrong key, and
// answers the CORS preflight itself.
func statsCase(tb testing.TB) (map[string]string, func(*testing.T, *lambdatest.Function)) {
	ctx := context.Background()
	url, pool := database(tb)
	site, key, err := sites.AddWithKey(ctx, pool, sites.NewSite{PublicID: "shop1", Domains: []string{"shop.example"}, Timezone: "Europe/Istanbul"})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, traffic_source, device_type, pageviews, phone_clicks)
		VALUES ($1, gen_random_uuid(), now() - interval '2 days', now() - interval '2 days', now() - interval '2 days' + interval '30 seconds', 'google_ads', 'mobile', 2, 1),
		       ($1, gen_random_uuid(), now() - interval '1 minute', now(), now(), 'direct', 'desktop', 1, 0)`, site.ID); err != nil {
		tb.Fatal(err)
	}
	if _, err := stats.RunRefresh(ctx, pool, "test"); err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": url, "DB_MAX_CONNS": "2", "LOG_LEVEL": "info"}
	return env, func(t *testing.T, f *lambdatest.Function) {
		res := invokeStats(t, f, http.MethodGet, "site=shop1&period=7d", map[string]string{"Authorization": "Bearer " + key, "Origin": "https://dash.example"})
		var got stats.Answer
		if err := json.Unmarshal([]byte(res.body), &got); err != nil || res.status != http.StatusOK {
			t.Fatalf("GET = %d %s\nfunction output:\n%s", res.status, res.body, f.Logs())
		}
		want, err := stats.NewService(pool).Summary(ctx, site.ID, stats.Request{Period: "7d"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || got.Totals.Sessions != 2 || got.ServedFrom.ViewDays != 6 || got.ServedFrom.LiveDays != 1 {
			t.Errorf("the function answered %+v\nthe service answers %+v", got, want)
		}
		if v := res.header.Get("Access-Control-Allow-Origin"); v != "*" {
			t.Errorf("Access-Control-Allow-Origin %q, want *", v)
		}
		if res := invokeStats(t, f, http.MethodGet, "site=shop1&period=7d", map[string]string{"Authorization": "Bearer wrong"}); res.status != http.StatusUnauthorized {
			t.Errorf("a wrong key: %d %s", res.status, res.body)
		}
		res = invokeStats(t, f, http.MethodOptions, "", map[string]string{"Origin": "https://dash.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
		if res.status != http.StatusNoContent || !strings.Contains(res.header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v", res.status, res.header)
		}
	}
}

// invokeStats sends one request with a query string to the function as its
// Function URL would.
func invokeStats(t *testing.T, f *lambdatest.Function, method, query string, headers map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, "https://abcdefghij.lambda-url.eu-central-1.on.aws/?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	ev, err := lambdatest.FunctionURLEvent(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := f.Invoke(ctx, ev)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	resp, err := lambdatest.HTTPResponse(r)
	if err != nil {
		t.Fatalf("%s: %v\nfunction output:\n%s", method, err, f.Logs())
	}
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
