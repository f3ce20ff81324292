package testnotification_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
	"github.com/opsmantik/opsmantik/pkg/testnotification"
)

const secret = "s3cr3t-cron-value"

func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func TestEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		secret     config.Secret
		method     string
		auth       string
		body       string
		script     []telegramtest.Reply
		status     int
		wantBody   string // substring
		wantText   string // what the chat shows; empty: nothing sent
		wantHeader [2]string
		origin     string // a browser's Origin; the answer must carry no CORS either way
		preflight  bool   // an OPTIONS preflight
		wantLog    string // in the request's log line
	}{
		{name: "right secret, default info test", secret: secret, method: "POST", auth: "Bearer " + secret,
			status: 200, wantBody: `{"message_id":1,"ok":true}`, wantText: "ℹ️ [INFO] Test notification from OpsMantik at 2026-11-20 12:00:00 UTC: alerts reach this chat.",
			wantLog: `"level":"INFO","msg":"test notification","method":"POST","status":200,"remote_addr":"192.0.2.1:1234","level":"info","message_id":1`},
		{name: "right secret, chosen level and hostile message", secret: secret, method: "POST", auth: "bearer  " + secret,
			body: `{"level":"alarm","message":"WT001 <script>&"}`, status: 200, wantBody: `"ok":true`, wantText: "🚨 [CRITICAL] WT001 <script>&"},
		{name: "wrong secret", secret: secret, method: "POST", auth: "Bearer " + secret + "x",
			status: 401, wantBody: `"ok":false`, wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="opsmantik"`},
			wantLog: `"level":"WARN","msg":"test notification","method":"POST","status":401,"remote_addr":"192.0.2.1:1234","err":"wrong secret"`},
		{name: "a guessed secret is not logged", secret: secret, method: "POST", auth: "Bearer guessed-Secret-0123456789",
			status: 401, wantLog: `"err":"wrong secret"`},
		{name: "wrong scheme", secret: secret, method: "POST", auth: "Basic " + secret, status: 401,
			wantLog: `"err":"Authorization is not a Bearer token"`},
		{name: "missing header", secret: secret, method: "POST", status: 401, wantLog: `"level":"WARN"`},
		{name: "from a browser page", secret: secret, method: "POST", auth: "Bearer " + secret, origin: "https://evil.example",
			status: 200, wantText: "ℹ️ [INFO] Test notification from OpsMantik at 2026-11-20 12:00:00 UTC: alerts reach this chat."},
		{name: "a browser's preflight", secret: secret, method: "OPTIONS", origin: "https://evil.example", preflight: true,
			status: 405, wantHeader: [2]string{"Allow", "POST"}, wantLog: `"level":"INFO"`},
		{name: "no secret configured", secret: "", method: "POST", auth: "Bearer ", status: 503, wantBody: "CRON_SECRET is not configured"},
		{name: "no secret configured, any method", secret: "", method: "GET", status: 503},
		{name: "wrong method", secret: secret, method: "GET", auth: "Bearer " + secret, status: 405, wantHeader: [2]string{"Allow", "POST"}},
		{name: "unknown level", secret: secret, method: "POST", auth: "Bearer " + secret, body: `{"level":"loud"}`, status: 400, wantBody: "unknown level"},
		{name: "not JSON", secret: secret, method: "POST", auth: "Bearer " + secret, body: `level=info`, status: 400},
		{name: "Telegram failing", secret: secret, method: "POST", auth: "Bearer " + secret,
			script: []telegramtest.Reply{telegramtest.BadRequest("chat not found")},
			status: 502, wantBody: `{"error":"Bad Request: chat not found","ok":false}`},
		{name: "Telegram down", secret: secret, method: "POST", auth: "Bearer " + secret,
			script: []telegramtest.Reply{telegramtest.ServerError(503), telegramtest.ServerError(503)},
			status: 502, wantBody: `"error":"Service Unavailable"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := telegramtest.New(t)
			srv.Script(tc.script...)
			c, err := telegram.New(srv.Config(), telegram.Options{Wait: noWait})
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			h := testnotification.New(tc.secret, c, slog.New(slog.NewJSONHandler(&logs, nil)))
			testnotification.SetClock(h, func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) })
			req := httptest.NewRequest(tc.method, "/api/test-notification", strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.preflight {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(compact(body), tc.wantBody) {
				t.Fatalf("answered %d %s, want %d containing %s", rec.Code, body, tc.status, tc.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if k := tc.wantHeader[0]; k != "" && rec.Header().Get(k) != tc.wantHeader[1] {
				t.Errorf("%s: %q, want %q", k, rec.Header().Get(k), tc.wantHeader[1])
			}
			for k := range rec.Header() {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("CORS header %s: %q; the endpoint answers no CORS", k, rec.Header().Get(k))
				}
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %s, want it to contain %s", logs.String(), tc.wantLog)
			}
			msgs := srv.Messages()
			switch {
			case tc.wantText == "" && len(msgs) != 0:
				t.Errorf("sent %v, want nothing", msgs)
			case tc.wantText != "" && (len(msgs) != 1 || msgs[0].Text != tc.wantText):
				t.Errorf("sent %+v, want one message %q", msgs, tc.wantText)
			}
			if tc.status == 401 || tc.status == 503 || tc.status == 405 {
				if srv.Requests() != 0 {
					t.Errorf("%d requests reached Telegram", srv.Requests())
				}
			}
			presented := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(tc.auth, "Bearer "), "Basic "))
			if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), srv.Token) ||
				(presented != "" && strings.Contains(logs.String(), presented)) {
				t.Errorf("a secret is in the log: %s", logs.String())
			}
			if lines := strings.Count(logs.String(), "\n"); lines != 1 {
				t.Errorf("%d log lines, want one per request", lines)
			}
		})
	}
}

func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

func TestFromConfigNeedsATelegramToken(t *testing.T) {
	t.Parallel()
	cfg := config.TestNotification{CronSecret: secret, Telegram: config.Telegram{APIURL: "https://api.telegram.org"}}
	if _, err := testnotification.FromConfig(context.Background(), &cfg); err == nil || !strings.Contains(err.Error(), "TELEGRAM_BOT_TOKEN") {
		t.Errorf("error %v", err)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(``))
	f.Add([]byte(`{"level":"alarm","message":"x"}`))
	f.Add([]byte(`{"level":"INFO"} {}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"message":"\u0000\ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		level, message, err := testnotification.ParseRequest(body)
		if err != nil {
			return
		}
		if _, perr := telegram.ParseLevel(string(level)); perr != nil {
			t.Fatalf("accepted level %q", level)
		}
		if message != strings.TrimSpace(message) || !utf8.ValidString(message) {
			t.Fatalf("message %q not trimmed valid text", message)
		}
	})
}
