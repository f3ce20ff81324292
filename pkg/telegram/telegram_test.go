package telegram_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
)

// waits records the pauses a client asked for instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func newClient(t *testing.T, cfg config.Telegram, opts telegram.Options) (*telegram.Client, *waits) {
	t.Helper()
	w := &waits{}
	if opts.Wait == nil {
		opts.Wait = w.wait
	}
	c, err := telegram.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func TestLevelsHavePrefixesAndOnlyInfoIsSilent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		level  telegram.Level
		prefix string
		silent bool
	}{
		{telegram.Info, "ℹ️ [INFO]", true},
		{telegram.Warning, "⚠️ [WARNING]", false},
		{telegram.Alarm, "🚨 [CRITICAL]", false},
		{telegram.Resolved, "✅ [RESOLVED]", false},
	}
	srv := telegramtest.New(t)
	cfg := srv.Config()
	cfg.ThreadID = 42
	c, _ := newClient(t, cfg, telegram.Options{})
	for i, tc := range cases {
		id, err := c.SendMessage(context.Background(), "WT001 TRAFFIC_LOSS", tc.level)
		if err != nil {
			t.Fatalf("%s: %v", tc.level, err)
		}
		m := srv.Messages()[i]
		if id != m.ID {
			t.Errorf("%s: id %d, server gave %d", tc.level, id, m.ID)
		}
		if want := tc.prefix + " WT001 TRAFFIC_LOSS"; m.Text != want {
			t.Errorf("%s: text %q, want %q", tc.level, m.Text, want)
		}
		if m.ParseMode != "HTML" || m.DisableNotification != tc.silent || m.ThreadID != 42 {
			t.Errorf("%s: parse mode %q, silent %v, thread %d", tc.level, m.ParseMode, m.DisableNotification, m.ThreadID)
		}
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]telegram.Level{"info": telegram.Info, " ALARM ": telegram.Alarm, "warning": telegram.Warning, "resolved": telegram.Resolved} {
		if got, err := telegram.ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := telegram.ParseLevel("critical"); err == nil {
		t.Error("ParseLevel(critical) succeeded")
	}
}

func TestHostileValuesAreEscaped(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	c, _ := newClient(t, srv.Config(), telegram.Options{})
	for _, text := range []string{
		`<script>alert("x")</script>`,
		`Tom & Jerry <b>bold</b> &amp; a > b`,
		`</b><i>unbalanced`,
		"bad utf-8: \xff",
	} {
		if _, err := c.SendMessage(context.Background(), text, telegram.Alarm); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
	}
	msgs := srv.Messages()
	for i, want := range []string{
		`<script>alert("x")</script>`,
		`Tom & Jerry <b>bold</b> &amp; a > b`,
		`</b><i>unbalanced`,
		"bad utf-8: \uFFFD",
	} {
		if got := strings.TrimPrefix(msgs[i].Text, "🚨 [CRITICAL] "); got != want {
			t.Errorf("reader sees %q, want %q", got, want)
		}
	}
	if !strings.Contains(msgs[0].HTML, "&lt;script&gt;") {
		t.Errorf("sent HTML %q does not escape <script>", msgs[0].HTML)
	}
}

// The fake rejects unescaped markup as Telegram does, so the escaping test
// above proves something.
func TestFakeRejectsUnescapedMarkup(t *testing.T) {
	t.Parallel()
	for _, html := range []string{"<script>x</script>", "a & b", "<b>open"} {
		if _, err := telegramtest.ParseHTML(html); err == nil {
			t.Errorf("ParseHTML(%q) accepted it", html)
		}
	}
}

func TestLongMessagesAreSplitNeverCut(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 400 {
		lines = append(lines, fmt.Sprintf("line %03d: <figure> & 🚀 value", i))
	}
	cases := map[string]string{
		"lines":           strings.Join(lines, "\n"),
		"one long word":   strings.Repeat("x", 9000),
		"astral emoji":    strings.Repeat("😀", 5000),
		"escapes at edge": strings.Repeat("&<>", 3000),
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := telegramtest.New(t)
			c, _ := newClient(t, srv.Config(), telegram.Options{})
			id, err := c.SendMessage(context.Background(), text, telegram.Warning)
			if err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) < 2 {
				t.Fatalf("sent %d messages, want a split", len(msgs))
			}
			if id != msgs[0].ID {
				t.Errorf("returned id %d, want the first part's %d", id, msgs[0].ID)
			}
			var joined strings.Builder
			for i, m := range msgs {
				head := fmt.Sprintf("⚠️ [WARNING] (%d/%d) ", i+1, len(msgs))
				if !strings.HasPrefix(m.Text, head) {
					t.Fatalf("part %d starts %q, want %q", i+1, m.Text[:min(40, len(m.Text))], head)
				}
				joined.WriteString(strings.TrimPrefix(m.Text, head))
			}
			if joined.String() != text {
				t.Error("the parts joined are not the original text")
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	proxy502 := telegramtest.Reply{Status: 502, Body: "<html>502 Bad Gateway</html>"}
	cases := []struct {
		name     string
		script   []telegramtest.Reply
		wantErr  string // empty: success
		requests int
		waits    []time.Duration
	}{
		{"429 then success waits retry_after", []telegramtest.Reply{telegramtest.FloodWait(2)}, "", 2, []time.Duration{2 * time.Second}},
		{"429 longer than the time left is not retried", []telegramtest.Reply{telegramtest.FloodWait(30)}, "telegram: Too Many Requests: retry after 30", 1, nil},
		{"429 twice gives up", []telegramtest.Reply{telegramtest.FloodWait(1), telegramtest.FloodWait(1)}, "telegram: Too Many Requests: retry after 1", 2, []time.Duration{time.Second}},
		{"500 then success", []telegramtest.Reply{telegramtest.ServerError(500)}, "", 2, []time.Duration{500 * time.Millisecond}},
		{"5xx twice gives up", []telegramtest.Reply{telegramtest.ServerError(502), telegramtest.ServerError(503)}, "telegram: Service Unavailable", 2, []time.Duration{500 * time.Millisecond}},
		{"non-JSON 5xx names the status", []telegramtest.Reply{proxy502, proxy502}, "telegram: HTTP 502 Bad Gateway", 2, []time.Duration{500 * time.Millisecond}},
		{"network error then success", []telegramtest.Reply{{Drop: true}}, "", 2, []time.Duration{500 * time.Millisecond}},
		{"400 is not retried", []telegramtest.Reply{telegramtest.BadRequest("can't parse entities: Unsupported start tag \"script\" at byte offset 0")}, `telegram: Bad Request: can't parse entities: Unsupported start tag "script" at byte offset 0`, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := telegramtest.New(t)
			srv.Script(tc.script...)
			c, w := newClient(t, srv.Config(), telegram.Options{})
			_, err := c.SendMessage(context.Background(), "hello", telegram.Info)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if got := srv.Requests(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if got := w.all(); fmt.Sprint(got) != fmt.Sprint(tc.waits) {
				t.Errorf("waited %v, want %v", got, tc.waits)
			}
			if tc.wantErr == "" && len(srv.Messages()) != 1 {
				t.Errorf("%d messages delivered, want 1", len(srv.Messages()))
			}
		})
	}
}

func TestErrorIsTyped(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	srv.Script(telegramtest.FloodWait(60))
	c, _ := newClient(t, srv.Config(), telegram.Options{})
	_, err := c.SendMessage(context.Background(), "x", telegram.Info)
	var tg *telegram.Error
	if !errors.As(err, &tg) || tg.StatusCode != 429 || tg.RetryAfter != time.Minute || !tg.Temporary() {
		t.Fatalf("error %#v, want a temporary 429 with RetryAfter 1m", err)
	}
}

func TestTimeoutGivesUp(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	srv.Script(telegramtest.Reply{Hang: true})
	c, w := newClient(t, srv.Config(), telegram.Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.SendMessage(context.Background(), "x", telegram.Alarm)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("took %v", elapsed)
	}
	if srv.Requests() != 1 || len(w.all()) != 0 {
		t.Errorf("%d requests, waits %v: a timed-out send must not retry", srv.Requests(), w.all())
	}
}

func TestDefaultTimeoutIsFiveSeconds(t *testing.T) {
	t.Parallel()
	if telegram.DefaultTimeout != 5*time.Second {
		t.Fatal(telegram.DefaultTimeout)
	}
}

func TestTokenNeverInOutput(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	var outputs []string
	send := func(cfg config.Telegram, opts telegram.Options, script ...telegramtest.Reply) {
		srv.Script(script...)
		c, _ := newClient(t, cfg, opts)
		_, err := c.SendMessage(context.Background(), "x", telegram.Alarm)
		if err == nil {
			t.Fatalf("expected an error (script %v)", script)
		}
		outputs = append(outputs, err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err))
		outputs = append(outputs, fmt.Sprintf("%v %+v %#v %s", c, c, c, c))
		logger.Error("send failed", "err", err, "client", c, "config", cfg)
	}
	unreachable := srv.Config()
	unreachable.APIURL = closed.URL
	send(unreachable, telegram.Options{})
	send(srv.Config(), telegram.Options{Timeout: 50 * time.Millisecond}, telegramtest.Reply{Hang: true})
	send(srv.Config(), telegram.Options{}, telegramtest.ServerError(500), telegramtest.ServerError(500))
	send(srv.Config(), telegram.Options{}, telegramtest.BadRequest("chat not found"))
	cfg := srv.Config()
	outputs = append(outputs, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), logs.String())
	for _, out := range outputs {
		if strings.Contains(out, srv.Token) || strings.Contains(out, "sEcReT") {
			t.Errorf("the token appears in %q", out)
		}
	}
	if !strings.Contains(logs.String(), "bot<redacted>") {
		t.Errorf("the network error should name the redacted URL: %s", logs.String())
	}
}

func TestNewRequiresTokenAndChat(t *testing.T) {
	t.Parallel()
	if _, err := telegram.New(config.Telegram{APIURL: "https://api.telegram.org"}, telegram.Options{}); err == nil || !strings.Contains(err.Error(), "TELEGRAM_BOT_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	if _, err := telegram.New(config.Telegram{BotToken: "t", APIURL: "https://api.telegram.org"}, telegram.Options{}); err == nil || !strings.Contains(err.Error(), "TELEGRAM_CHAT_ID") {
		t.Errorf("no chat: %v", err)
	}
}

func TestWrongTokenReturnsTelegramsDescription(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	cfg := srv.Config()
	cfg.BotToken = "1:wrong"
	c, _ := newClient(t, cfg, telegram.Options{})
	if _, err := c.SendMessage(context.Background(), "x", telegram.Info); err == nil || err.Error() != "telegram: Unauthorized" {
		t.Fatalf("error %v", err)
	}
}

func TestConsolePrintsInsteadOfSending(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s, err := telegram.NewSender(config.Telegram{APIURL: "https://api.telegram.org"}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		id, err := s.SendMessage(context.Background(), "WT001 <down>", telegram.Alarm)
		if err != nil || id != want {
			t.Fatalf("id %d, %v", id, err)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "TELEGRAM_BOT_TOKEN is not set"); n != 1 {
		t.Errorf("says it %d times, want once at start:\n%s", n, out)
	}
	if strings.Count(out, `🚨 [CRITICAL] WT001 <down>`) != 2 {
		t.Errorf("messages not printed:\n%s", out)
	}
}
