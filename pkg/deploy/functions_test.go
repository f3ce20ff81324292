package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/deploy"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func moduleRoot(tb testing.TB) string {
	tb.Helper()
	root, err := deploy.Root(".")
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// functionCase says how to run one function under the Runtime API: setup
// prepares what it needs (a fresh database, fakes of the services it calls)
// and returns a working environment and a check that invokes the started
// function and verifies the outcome. The benchmark uses setup alone.
type functionCase struct {
	setup func(tb testing.TB) (env map[string]string, check func(t *testing.T, f *lambdatest.Function))
	// corsByHandler: the HTTP handler answers CORS itself, so its Function
	// URL must have no CORS configuration (Lambda would add a second
	// Access-Control-Allow-Origin, which browsers refuse). Otherwise the URL
	// must have one.
	corsByHandler bool
	// noCORS: the endpoint is not for browsers (curl, operators): neither
	// its handler nor its Function URL answers CORS.
	noCORS bool
}

// functionCases covers every folder under functions/; a folder without a
// case fails TestBootstrapsUnderRuntimeAPI.
func functionCases() map[string]functionCase {
	return map[string]functionCase{
		"sync":              {setup: syncCase, corsByHandler: true},
		"watchtower-cron":   {setup: watchtowerCase},
		"test-notification": {setup: testNotificationCase, noCORS: true},
		"stats":             {setup: statsCase, corsByHandler: true},
		"audit-integrity":   {setup: auditCase},
		// Server to server (QStash): no CORS at all, so none on its URL either.
		"sync-google-ads": {setup: syncGoogleAdsCase, corsByHandler: true},
	}
}

// database gives the case a fresh migrated database: its URL and a pool.
func database(tb testing.TB) (string, *pgxpool.Pool) {
	tb.Helper()
	url := dbtest.URL(dbtest.Name(tb))
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return url, pool
}

const (
	shopOrigin = "https://shop.example"
	desktopUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// syncCase: the ingest endpoint answers its health probe and stores a real
// tracker batch (docs/protocol.md) sent as a Function URL event; delivered again
// to the same warm instance, it leaves the rows as they were.
func syncCase(tb testing.TB) (map[string]string, func(*testing.T, *lambdatest.Function)) {
	url, pool := database(tb)
	site, err := sites.Add(context.Background(), pool, sites.NewSite{PublicID: "shop1", Name: "Shop", Domains: []string{"shop.example"}})
	if err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": url, "DB_MAX_CONNS": "2", "LOG_LEVEL": "info"}
	return env, func(t *testing.T, f *lambdatest.Function) {
		health := invokeHTTP(t, f, http.MethodGet, "", nil)
		if health.status != http.StatusOK || !strings.Contains(health.body, `"ok":true`) {
			t.Fatalf("GET (health) = %d %s, want 200 {\"ok\":true}", health.status, health.body)
		}

		sid := uuid.New()
		batch := sampleBatch(site.PublicID, sid, time.Now())
		for delivery := 1; delivery <= 2; delivery++ {
			res := invokeHTTP(t, f, http.MethodPost, batch, map[string]string{
				"Content-Type": "text/plain;charset=UTF-8",
				"Origin":       shopOrigin,
			})
			var body struct {
				OK       bool              `json:"ok"`
				Rejected []json.RawMessage `json:"rejected"`
			}
			if err := json.Unmarshal([]byte(res.body), &body); err != nil || res.status != http.StatusOK || !body.OK || len(body.Rejected) != 0 {
				t.Fatalf("delivery %d: POST = %d %s, want 200 ok with nothing rejected\nfunction output:\n%s", delivery, res.status, res.body, f.Logs())
			}
			if got := res.header.Get("Access-Control-Allow-Origin"); got != shopOrigin {
				t.Errorf("delivery %d: Access-Control-Allow-Origin = %q, want %q", delivery, got, shopOrigin)
			}

			var sessions, events, pageviews, phoneClicks int
			var source string
			err := pool.QueryRow(context.Background(), `
				SELECT count(*), min(traffic_source), coalesce(sum(pageviews), 0), coalesce(sum(phone_clicks), 0),
				       (SELECT count(*) FROM events WHERE site_id = $1 AND session_id = $2)
				FROM sessions WHERE site_id = $1 AND id = $2`, site.ID, sid).Scan(&sessions, &source, &pageviews, &phoneClicks, &events)
			if err != nil {
				t.Fatal(err)
			}
			if sessions != 1 || events != 3 || pageviews != 1 || phoneClicks != 1 || source != "google_ads" {
				t.Errorf("after delivery %d: %d sessions (source %s, %d pageviews, %d phone clicks) and %d events; want 1 google_ads session with 1 pageview, 1 phone click, and 3 events (the heartbeat is no row)",
					delivery, sessions, source, pageviews, phoneClicks, events)
			}
		}
	}
}

// telegramEnv points a function at an in-process Bot API.
func telegramEnv(tg *telegramtest.Server) map[string]string {
	return map[string]string{
		"TELEGRAM_BOT_TOKEN": tg.Token,
		"TELEGRAM_CHAT_ID":   tg.ChatID,
		"TELEGRAM_API_URL":   tg.URL,
		"LOG_LEVEL":          "info",
	}
}

// watchtowerCase: one scheduled event runs the checks against an empty
// database, so traffic loss fires and reaches Telegram; a second event on
// the same warm instance finds the alert already sent.
func watchtowerCase(tb testing.TB) (map[string]string, func(*testing.T, *lambdatest.Function)) {
	url, pool := database(tb)
	tg := telegramtest.New(tb)
	env := telegramEnv(tg)
	env["DATABASE_URL"] = url
	env["DB_MAX_CONNS"] = "2"
	lateLead(tb, pool)
	return env, func(t *testing.T, f *lambdatest.Function) {
		invokeScheduled(t, f, "watchtower-cron")
		checkSwept(t, pool)
		sent := len(tg.Messages())
		var firing bool
		if err := pool.QueryRow(context.Background(), `SELECT firing FROM alert_state WHERE code = 'WT001'`).Scan(&firing); err != nil || !firing || sent == 0 {
			t.Fatalf("after a run on an empty database: WT001 firing %v (err %v), %d messages; want WT001 firing and its alarm sent\nfunction output:\n%s", firing, err, sent, f.Logs())
		}
		invokeScheduled(t, f, "watchtower-cron")
		if n := len(tg.Messages()); n != sent {
			t.Errorf("the second run sent %d more messages, want none (the alerts are not due again)", n-sent)
		}
	}
}

// auditCase: one scheduled event audits a database where a site's events
// have lost their sessions, so AUD001 alarms on Telegram and the run is
// recorded; a second event on the same warm instance sends nothing more.
func auditCase(tb testing.TB) (map[string]string, func(*testing.T, *lambdatest.Function)) {
	url, pool := database(tb)
	ctx := context.Background()
	site, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "shop1", Name: "Shop", Domains: []string{"shop.example"}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO events (site_id, id, session_id, type, occurred_at, received_at)
		SELECT $1, gen_random_uuid(), gen_random_uuid(), 'pageview', now() - interval '1 hour', now() - interval '1 hour'
		FROM generate_series(1, 3)`, site.ID); err != nil {
		tb.Fatal(err)
	}
	tg := telegramtest.New(tb)
	env := telegramEnv(tg)
	env["DATABASE_URL"] = url
	env["DB_MAX_CONNS"] = "2"
	return env, func(t *testing.T, f *lambdatest.Function) {
		invokeScheduled(t, f, "audit-integrity")
		msgs := tg.Messages()
		if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 1 site\n") {
			t.Fatalf("messages %+v, want the AUD001 alarm\nfunction output:\n%s", msgs, f.Logs())
		}
		var trigger, status string
		if err := pool.QueryRow(context.Background(), `SELECT trigger, status FROM audit_runs`).Scan(&trigger, &status); err != nil || trigger != "schedule" || status != "ok" {
			t.Errorf("audit_runs: %s %s (%v), want one scheduled run, ok", trigger, status, err)
		}
		invokeScheduled(t, f, "audit-integrity")
		if n := len(tg.Messages()); n != 1 {
			t.Errorf("the second run sent %d more messages, want none (the alarm is not due again)", n-1)
		}
	}
}

// testNotificationCase: the operators' endpoint refuses a wrong secret and
// delivers a test message with the right one. It is for curl, not browsers:
// no CORS headers, and a browser's preflight is refused like any non-POST.
func testNotificationCase(tb testing.TB) (map[string]string, func(*testing.T, *lambdatest.Function)) {
	tg := telegramtest.New(tb)
	env := telegramEnv(tg)
	env["CRON_SECRET"] = "s3cret-for-tests"
	return env, func(t *testing.T, f *lambdatest.Function) {
		res := invokeHTTP(t, f, http.MethodPost, "", map[string]string{"Authorization": "Bearer wrong"})
		if res.status != http.StatusUnauthorized || len(tg.Messages()) != 0 {
			t.Fatalf("wrong secret: %d %s, %d messages; want 401 and nothing sent", res.status, res.body, len(tg.Messages()))
		}
		res = invokeHTTP(t, f, http.MethodPost, `{"message":"deploy check"}`, map[string]string{
			"Authorization": "Bearer s3cret-for-tests",
			"Content-Type":  "application/json",
			"Origin":        "https://ops.example",
		})
		msgs := tg.Messages()
		if res.status != http.StatusOK || len(msgs) != 1 || !strings.Contains(msgs[0].Text, "deploy check") {
			t.Fatalf("right secret: %d %s, messages %+v; want 200 and the message delivered\nfunction output:\n%s", res.status, res.body, msgs, f.Logs())
		}
		if v := res.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("the handler sets Access-Control-Allow-Origin %q; the endpoint answers no CORS", v)
		}
		res = invokeHTTP(t, f, http.MethodOptions, "", map[string]string{
			"Origin":                         "https://ops.example",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "authorization",
		})
		if res.status != http.StatusMethodNotAllowed || res.header.Get("Access-Control-Allow-Origin") != "" || res.header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight: %d %v, want 405 with no CORS headers", res.status, res.header)
		}
	}
}

// sampleBatch is a tracker batch as docs/protocol.md shows it: a Google Ads
// landing, a pageview, a heartbeat, a phone click and a form submission.
func sampleBatch(site string, sid uuid.UUID, now time.Time) string {
	ms := now.UnixMilli()
	landing := "https://shop.example/landing?gclid=Cj0KCQtest&utm_source=google&utm_medium=cpc&utm_campaign=brand"
	b, _ := json.Marshal(map[string]any{
		"v": 1, "site": site, "sid": sid.String(), "vid": uuid.NewString(),
		"sent_at": ms, "failures": 0, "channel": "primary",
		"ctx": map[string]any{
			"url": landing, "referrer": "https://www.google.com/",
			"gclid": "Cj0KCQtest", "wbraid": nil, "gbraid": nil,
			"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand", "utm_term": nil, "utm_content": nil,
			"lang": "tr-TR", "tz": "Europe/Istanbul", "sw": 1920, "sh": 1080,
		},
		"events": []map[string]any{
			{"id": uuid.NewString(), "type": "pageview", "ts": ms - 30000, "url": landing, "title": "Home"},
			{"id": uuid.NewString(), "type": "heartbeat", "ts": ms - 20000, "active_ms": 9000, "scroll": 60, "state": "active"},
			{"id": uuid.NewString(), "type": "phone_click", "ts": ms - 10000, "url": landing, "target": "+905551112233"},
			{"id": uuid.NewString(), "type": "form_submit", "ts": ms - 5000, "url": landing, "form": "contact"},
		},
	})
	return string(b)
}

type httpResult struct {
	status int
	header http.Header
	body   string
}

// invokeHTTP sends one request to the function as its Function URL would.
func invokeHTTP(t *testing.T, f *lambdatest.Function, method, body string, headers map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, "https://abcdefghij.lambda-url.eu-central-1.on.aws/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", desktopUA)
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

// invokeScheduled sends one EventBridge scheduled event and requires success.
func invokeScheduled(t *testing.T, f *lambdatest.Function, rule string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := f.Invoke(ctx, lambdatest.ScheduledEvent(rule, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != nil {
		t.Fatalf("scheduled event: function error %s: %s\nfunction output:\n%s", r.Error.Type, r.Error.Message, f.Logs())
	}
	if strings.TrimSpace(string(r.Payload)) != "null" {
		t.Errorf("scheduled event: response %s, want null", r.Payload)
	}
}
