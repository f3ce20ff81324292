package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opsmantik-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "opsmantik")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build opsmantik: %v\n%s", err, out)
		os.Exit(1)
	}
	code := dbtest.Run(m) // in pooler mode the CLI gets PgBouncer URLs (dbtest.URL)
	os.RemoveAll(dir)
	os.Exit(code)
}

// opsmantik runs the built command with env added to the environment.
func opsmantik(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freshDatabase names a database that does not exist yet (migrate and dev
// create it); it is dropped when the test ends.
func freshDatabase(t *testing.T) string {
	t.Helper()
	name := dbtest.Name(t)
	pool, err := pgxpool.New(context.Background(), dbtest.DirectURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), "DROP DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return name
}

// devDatabase is the DATABASE_URL for `opsmantik dev`, which creates its
// database and applies the migrations when it starts. Directly: a database
// that does not exist yet. In pooler mode: an already migrated database
// through PgBouncer, because migrations run over a direct connection (README,
// Scale) and the direct run covers the creation; dev's start is then a no-op
// and its ingest and jobs go through the pooler.
func devDatabase(t *testing.T) string {
	t.Helper()
	if dbtest.Pooled() != "" {
		return dbtest.URL(dbtest.Name(t))
	}
	return dbtest.DirectURL(freshDatabase(t))
}

func TestDevServesTheDemoAndAcceptsABatch(t *testing.T) {
	dbURL := devDatabase(t)
	addr := freeAddr(t)
	cmd := exec.Command(binary, "dev")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "OPSMANTIK_ADDR="+addr, "TELEGRAM_BOT_TOKEN=", "OPSMANTIK_DEMO_DATA=false")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "OpsMantik is running") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			t.Fatalf("dev exited: %s", stderr.String())
		}
		t.Log(line)
	case <-time.After(60 * time.Second):
		t.Fatalf("dev did not start: %s", stderr.String())
	}
	base := "http://" + addr

	page := get(t, base+"/")
	if !strings.Contains(page, `src="/ux-core.js"`) || !strings.Contains(page, `data-site="demo"`) || !strings.Contains(page, base+"/api/sync") {
		t.Fatalf("demo page: %s", page)
	}
	if js := get(t, base+"/ux-core.js"); len(js) == 0 {
		t.Fatal("empty tracker")
	}

	now := time.Now().UnixMilli()
	batch := fmt.Sprintf(`{"v":1,"site":"demo","sid":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a01","sent_at":%d,"channel":"primary","failures":0,
		"ctx":{"url":"%s/?gclid=abc","gclid":"abc"},
		"events":[{"id":"00000000-0000-4000-8000-000000000001","type":"pageview","ts":%d,"url":"%s/","title":"Demo"},
		          {"id":"00000000-0000-4000-8000-000000000002","type":"phone_click","ts":%d,"url":"%s/","target":"+905551112233"}]}`,
		now, base, now, base, now, base)
	req, _ := http.NewRequest("POST", base+"/api/sync", strings.NewReader(batch))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", "http://localhost:"+strings.Split(addr, ":")[1])
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"accepted":2`) {
		t.Fatalf("batch: %d %s", resp.StatusCode, raw)
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var source string
	var score int
	if err := pool.QueryRow(context.Background(), `SELECT traffic_source, lead_score FROM sessions`).Scan(&source, &score); err != nil {
		t.Fatal(err)
	}
	if source != "google_ads" || score != 45 {
		t.Fatalf("session: %s %d", source, score)
	}

	// The simulator plays visits through the same server without a failure.
	out, serr, err := opsmantik(t, nil, "simulate", "--url", base+"/api/sync", "--visitors", "30", "--concurrency", "4", "--seed", "7")
	if err != nil {
		t.Fatalf("simulate: %v\n%s\n%s", err, out, serr)
	}
	var sessions, bots int
	if err := pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE is_bot) FROM sessions`).Scan(&sessions, &bots); err != nil {
		t.Fatal(err)
	}
	if sessions != 31 || bots != 0 {
		t.Fatalf("after simulating 30 visitors: %d sessions, %d bots\n%s", sessions, bots, out)
	}

	// Ctrl-C stops it cleanly.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev did not stop on SIGINT")
	}
	if !strings.Contains(stderr.String(), "opsmantik dev: stopped") {
		t.Fatalf("no stop line: %s", stderr.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestMigrateAndSites(t *testing.T) {
	name := freshDatabase(t)
	// Migrations run over a direct connection; the rest goes through the
	// pooler in pooler mode.
	env := []string{"DATABASE_URL=" + dbtest.URL(name)}
	for range 2 { // the second run is a no-op
		if _, stderr, err := opsmantik(t, []string{"DATABASE_URL=" + dbtest.DirectURL(name)}, "migrate"); err != nil {
			t.Fatalf("migrate: %v %s", err, stderr)
		}
	}
	out, stderr, err := opsmantik(t, env, "site", "add", "--public-id", "shop1", "--domain", "Shop.Example", "--domain", "shop.example.org",
		"--timezone", "Europe/Istanbul", "--currency", "try", "--name", "Shop")
	if err != nil {
		t.Fatalf("site add: %v %s", err, stderr)
	}
	var site map[string]any
	if err := json.Unmarshal([]byte(out), &site); err != nil {
		t.Fatalf("site add printed %q", out)
	}
	if site["public_id"] != "shop1" || site["currency"] != "TRY" || site["timezone"] != "Europe/Istanbul" || site["lead_threshold"] != 80.0 ||
		fmt.Sprint(site["domains"]) != "[shop.example shop.example.org]" {
		t.Fatalf("site = %v", site)
	}
	out, _, err = opsmantik(t, env, "site", "list")
	if err != nil || !strings.Contains(out, `"public_id": "shop1"`) {
		t.Fatalf("site list: %v %s", err, out)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"site", "add", "--public-id", "shop1", "--domain", "x.example"}, "already exists"},
		{[]string{"site", "add", "--public-id", "bad id", "--domain", "x.example"}, "public id"},
		{[]string{"site", "add", "--public-id", "s2"}, "--domain"},
		{[]string{"site", "add", "--public-id", "s2", "--domain", "https://x.example/"}, "domain"},
		{[]string{"site", "add", "--public-id", "s2", "--domain", "x.example", "--timezone", "Mars/Olympus"}, "timezone"},
		{[]string{"site", "add", "--public-id", "s2", "--domain", "x.example", "--currency", "EURO"}, "currency"},
	}
	for _, b := range bad {
		_, stderr, err := opsmantik(t, env, b.args...)
		if err == nil || !strings.Contains(stderr, b.want) {
			t.Fatalf("%v: err %v, stderr %q (want %q)", b.args, err, stderr, b.want)
		}
	}
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	_, stderr, err := opsmantik(t, []string{"DB_MAX_CONNS=many"}, "migrate")
	if err == nil || !strings.Contains(stderr, "DB_MAX_CONNS") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("err %v, stderr %q", err, stderr)
	}
	_, stderr, err = opsmantik(t, []string{"LOG_LEVEL=loud"}, "site", "list")
	if err == nil || !strings.Contains(stderr, "LOG_LEVEL") {
		t.Fatalf("err %v, stderr %q", err, stderr)
	}
}
