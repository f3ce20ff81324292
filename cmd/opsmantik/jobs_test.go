package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/telegram/telegramtest"
)

func TestRunWatchtowerOnAnEmptyDatabaseSendsTheTrafficAndClickIDAlarms(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	env := []string{
		"DATABASE_URL=" + dbtest.URL(dbtest.Name(t)),
		"TELEGRAM_BOT_TOKEN=" + srv.Token, "TELEGRAM_CHAT_ID=" + srv.ChatID, "TELEGRAM_API_URL=" + srv.URL,
	}
	_, stderr, err := opsmantik(t, env, "run", "watchtower")
	if err != nil {
		t.Fatalf("run watchtower: %v\n%s", err, stderr)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 ||
		!strings.HasPrefix(msgs[0].Text, "🚨 [CRITICAL] WT001 TRAFFIC_LOSS\n") ||
		!strings.HasPrefix(msgs[1].Text, "🚨 [CRITICAL] WT002 GCLID_LOSS\n") {
		t.Fatalf("messages %+v, want the WT001 and WT002 alarms", msgs)
	}
	if n := strings.Count(stderr, `"msg":"watchtower run"`); n != 1 || strings.Contains(stderr, srv.Token) {
		t.Errorf("want one watchtower line and no token in stderr:\n%s", stderr)
	}

	// A second run right after sends nothing: the alarms are not due again.
	if _, stderr, err := opsmantik(t, env, "run", "watchtower"); err != nil || len(srv.Messages()) != 2 {
		t.Fatalf("second run: %v, %d messages\n%s", err, len(srv.Messages()), stderr)
	}
}

func TestRunWithoutATokenPrintsTheAlarms(t *testing.T) {
	t.Parallel()
	env := []string{"DATABASE_URL=" + dbtest.URL(dbtest.Name(t)), "TELEGRAM_BOT_TOKEN="}
	_, stderr, err := opsmantik(t, env, "run", "watchtower")
	if err != nil {
		t.Fatalf("run watchtower: %v\n%s", err, stderr)
	}
	if strings.Count(stderr, "TELEGRAM_BOT_TOKEN is not set") != 1 ||
		!strings.Contains(stderr, "🚨 [CRITICAL] WT001 TRAFFIC_LOSS") || !strings.Contains(stderr, "🚨 [CRITICAL] WT002 GCLID_LOSS") {
		t.Fatalf("stderr:\n%s", stderr)
	}
}

func TestRunNamesItsJobs(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"run"}, {"run", "nope"}} {
		_, stderr, err := opsmantik(t, nil, args...)
		if err == nil || !strings.Contains(stderr, "watchtower (every 15m0s)") {
			t.Errorf("%v: %v, stderr %q", args, err, stderr)
		}
	}
}

func TestTheWatchtowerRunsEveryWATCHTOWER_INTERVAL(t *testing.T) {
	t.Parallel()
	for _, j := range scheduledJobs() {
		if j.name != "watchtower" {
			continue
		}
		if got := j.period(config.Alerting{Interval: 5 * time.Minute}); got != 5*time.Minute {
			t.Errorf("watchtower period %v with WATCHTOWER_INTERVAL=5m", got)
		}
		return
	}
	t.Fatal("no watchtower job")
}

func TestRunEveryRunsAtOnceThenOnEachTick(t *testing.T) {
	t.Parallel()
	ticks := make(chan time.Time)
	stopped := make(chan struct{})
	ticker := func(d time.Duration) (<-chan time.Time, func()) {
		if d != 15*time.Minute {
			t.Errorf("interval %v", d)
		}
		return ticks, func() { close(stopped) }
	}
	runs := make(chan struct{})
	job := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a run has no deadline")
		}
		runs <- struct{}{}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	go runEvery(ctx, logger, "watchtower", 15*time.Minute, job, ticker)
	<-runs // at start
	for range 2 {
		ticks <- time.Now()
		<-runs
	}
	cancel()
	<-stopped
}

// TestDevPrintsAlertsAndServesTestNotification: with no token, `opsmantik
// dev` says so once, prints the watchtower's alarms to its log, and answers
// the test notification with a local message id.
func TestDevPrintsAlertsAndServesTestNotification(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cmd := exec.Command(binary, "dev")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+devDatabase(t), "OPSMANTIK_ADDR="+addr,
		"TELEGRAM_BOT_TOKEN=", "CRON_SECRET=dev-secret-0123456789", "OPSMANTIK_DEMO_DATA=false")
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := &lineLog{cond: sync.NewCond(&sync.Mutex{})}
	go logs.read(stderrPipe)

	logs.waitFor(t, `"msg":"watchtower run"`)
	base := "http://" + addr
	post := func(auth string) (int, string) {
		req, _ := http.NewRequest("POST", base+"/api/test-notification", strings.NewReader(`{"message":"hello from the test"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("Bearer wrong"); code != 401 {
		t.Errorf("wrong secret: %d %s", code, body)
	}
	if code, body := post("Bearer dev-secret-0123456789"); code != 200 || !strings.Contains(body, `"message_id":3`) {
		t.Errorf("right secret: %d %s, want 200 with the third local message id", code, body)
	}
	logs.waitFor(t, "ℹ️ [INFO] hello from the test")

	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	out := logs.String()
	if n := strings.Count(out, "TELEGRAM_BOT_TOKEN is not set"); n != 1 {
		t.Errorf("says it %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{"🚨 [CRITICAL] WT001 TRAFFIC_LOSS", "🚨 [CRITICAL] WT002 GCLID_LOSS"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// lineLog collects a process's output and lets a test wait for a line.
type lineLog struct {
	cond  *sync.Cond
	b     strings.Builder
	ended bool
}

func (l *lineLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l.cond.L.Lock()
		l.b.WriteString(sc.Text() + "\n")
		l.cond.L.Unlock()
		l.cond.Broadcast()
	}
	l.cond.L.Lock()
	l.ended = true
	l.cond.L.Unlock()
	l.cond.Broadcast()
}

func (l *lineLog) String() string {
	l.cond.L.Lock()
	defer l.cond.L.Unlock()
	return l.b.String()
}

// waitFor returns once the output contains s; it fails if the process ends
// (or a minute passes) first.
func (l *lineLog) waitFor(t *testing.T, s string) {
	t.Helper()
	timer := time.AfterFunc(time.Minute, func() {
		l.cond.L.Lock()
		l.ended = true
		l.cond.L.Unlock()
		l.cond.Broadcast()
	})
	defer timer.Stop()
	l.cond.L.Lock()
	defer l.cond.L.Unlock()
	for !strings.Contains(l.b.String(), s) {
		if l.ended {
			t.Fatalf("no %q in the output:\n%s", s, l.b.String())
		}
		l.cond.Wait()
	}
}
