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

	"github.com/jackc/pgx/v5/pgxpool"

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

// auditDatabase is a migrated database where site shop has 10 events of
// which 3 lost their sessions an hour ago, and site other 4 orphans of 4
// received two hours ago.
func auditDatabase(t *testing.T) string {
	t.Helper()
	name := dbtest.Name(t)
	pool, err := pgxpool.New(context.Background(), dbtest.DirectURL(name))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		`INSERT INTO sites (public_id, name) VALUES ('shop', 'Shop'), ('other', 'Other')`,
		`INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, created_at, traffic_source, device_type, pageviews, event_count)
		 SELECT s.id, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, now() - interval '1 hour', now() - interval '1 hour',
		        now() - interval '1 hour', now() - interval '1 hour', 'direct', 'desktop', 1, 1
		 FROM sites s, generate_series(4, 10) i WHERE s.public_id = 'shop'`,
		`INSERT INTO events (site_id, id, session_id, type, occurred_at, received_at)
		 SELECT s.id, gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'pageview', now() - interval '1 hour', now() - interval '1 hour'
		 FROM sites s, generate_series(1, 10) i WHERE s.public_id = 'shop'`,
		`INSERT INTO events (site_id, id, session_id, type, occurred_at, received_at)
		 SELECT s.id, gen_random_uuid(), gen_random_uuid(), 'pageview', now() - interval '2 hours', now() - interval '2 hours'
		 FROM sites s, generate_series(1, 4) i WHERE s.public_id = 'other'`,
	} {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return name
}

func TestRunAuditTakesAWindowAndASite(t *testing.T) {
	t.Parallel()
	srv := telegramtest.New(t)
	name := auditDatabase(t)
	env := []string{
		"DATABASE_URL=" + dbtest.URL(name),
		"TELEGRAM_BOT_TOKEN=" + srv.Token, "TELEGRAM_CHAT_ID=" + srv.ChatID, "TELEGRAM_API_URL=" + srv.URL,
	}
	// The last 90 minutes of shop: its three orphans, not other's.
	_, stderr, err := opsmantik(t, env, "run", "audit", "--window", "90m", "--site", "shop")
	if err != nil {
		t.Fatalf("run audit: %v\n%s", err, stderr)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "🚨 [CRITICAL] AUD001 ORPHANED_EVENTS on 1 site\n") ||
		!strings.Contains(msgs[0].Text, "• shop (Shop): 3 of 10 (30.00%") || strings.Contains(msgs[0].Text, "other") {
		t.Fatalf("messages %+v, want shop's AUD001 alarm alone", msgs)
	}
	if n := strings.Count(stderr, `"msg":"audit run"`); n != 1 || strings.Contains(stderr, srv.Token) {
		t.Errorf("want one audit line and no token in stderr:\n%s", stderr)
	}

	// Every site over 90 minutes: other's orphans are older; shop is told.
	if _, stderr, err := opsmantik(t, env, "run", "audit", "--window", "90m"); err != nil || len(srv.Messages()) != 1 {
		t.Fatalf("second run: %v, %d messages\n%s", err, len(srv.Messages()), stderr)
	}
	// The default window (24 h) finds other's too.
	if _, stderr, err := opsmantik(t, env, "run", "audit"); err != nil || len(srv.Messages()) != 2 ||
		!strings.Contains(srv.Messages()[1].Text, "• other (Other): 4 of 4 (100.00%") {
		t.Fatalf("third run: %v, messages %+v\n%s", err, srv.Messages(), stderr)
	}

	pool, err := pgxpool.New(context.Background(), dbtest.DirectURL(name))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var runs, forShop int
	var windows []string
	rows, err := pool.Query(context.Background(), `
		SELECT extract(epoch FROM window_end - window_start)::bigint::text, site_id IS NOT NULL FROM audit_runs WHERE trigger = 'cli' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var w string
		var one bool
		if err := rows.Scan(&w, &one); err != nil {
			t.Fatal(err)
		}
		runs++
		windows = append(windows, w)
		if one {
			forShop++
		}
	}
	if runs != 3 || forShop != 1 || strings.Join(windows, ",") != "5400,5400,86400" {
		t.Errorf("audit_runs: %d cli runs (%d for one site), windows %v", runs, forShop, windows)
	}
}

func TestRunAuditRefusesBadFlags(t *testing.T) {
	t.Parallel()
	env := []string{"DATABASE_URL=" + dbtest.URL(dbtest.Name(t)), "TELEGRAM_BOT_TOKEN="}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "audit", "--window", "0s"}, "AUDIT_WINDOW: must be a positive duration"},
		{[]string{"run", "audit", "--window", "745h"}, "AUDIT_WINDOW: must be a positive duration up to 744h"},
		{[]string{"run", "audit", "--window", "a day"}, `invalid value "a day" for flag -window`},
		{[]string{"run", "audit", "--site", "nope"}, `unknown site "nope"`},
		{[]string{"run", "audit", "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "watchtower", "--site", "shop"}, "flag provided but not defined: -site"},
	} {
		_, stderr, err := opsmantik(t, env, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: %v, stderr %q; want a failure saying %q", c.args, err, stderr, c.want)
		}
	}
	// At the edge: the longest window runs.
	if _, stderr, err := opsmantik(t, env, "run", "audit", "--window", "744h"); err != nil {
		t.Errorf("--window 744h: %v\n%s", err, stderr)
	}
}

func TestTheNextTimeOfDayIsStrictlyLater(t *testing.T) {
	t.Parallel()
	at := timeOfDay{hour: 3, minute: 15}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ now, want time.Time }{
		{day.Add(3*time.Hour + 14*time.Minute + 59*time.Second), day.Add(3*time.Hour + 15*time.Minute)},
		{day.Add(3*time.Hour + 15*time.Minute), day.Add(27*time.Hour + 15*time.Minute)},
		{day.Add(23 * time.Hour), day.Add(27*time.Hour + 15*time.Minute)},
		// A local clock: the time is UTC's.
		{day.Add(time.Hour).In(time.FixedZone("UTC+3", 3*3600)), day.Add(3*time.Hour + 15*time.Minute)},
	} {
		if got := at.next(c.now); !got.Equal(c.want) {
			t.Errorf("next after %s = %s, want %s", c.now, got, c.want)
		}
	}
}

// The audit runs in dev at 03:15 UTC each day, not at start.
func TestRunDailyWaitsForItsTimeEachDay(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	after := func(d time.Duration) <-chan time.Time { waits <- d; return fire }
	runs := make(chan struct{})
	job := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a run has no deadline")
		}
		runs <- struct{}{}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	go func() { runDaily(ctx, logger, "audit", timeOfDay{hour: 3, minute: 15}, job, clock, after); close(done) }()

	if d := <-waits; d != 2*time.Hour+15*time.Minute {
		t.Errorf("first wait %s, want 2h15m (01:00 to 03:15)", d)
	}
	mu.Lock()
	now = time.Date(2026, 11, 20, 3, 15, 0, 500_000_000, time.UTC) // the timer fires a little late
	mu.Unlock()
	fire <- now
	<-runs
	if d := <-waits; d != 24*time.Hour-500*time.Millisecond {
		t.Errorf("second wait %s, want until 03:15 the next day", d)
	}
	cancel()
	<-done
}
