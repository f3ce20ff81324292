package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// TestMigrateSaysWhenPgCronIsMissing: the test server has no pg_cron; migrate
// succeeds and says so in one line, with what to enable.
func TestMigrateSaysWhenPgCronIsMissing(t *testing.T) {
	t.Parallel()
	// Migrations run over a direct connection, never through a pooler.
	env := []string{"DATABASE_URL=" + dbtest.DirectURL(freshDatabase(t))}
	stdout, stderr, err := opsmantik(t, env, "migrate")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	if strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(stdout, "pg_cron is not available on this server") ||
		!strings.Contains(stdout, "shared_preload_libraries") || !strings.Contains(stdout, "RDS") || !strings.Contains(stdout, "Supabase") {
		t.Errorf("stdout %q", stdout)
	}
}

type siteJSON struct {
	ID            int64    `json:"id"`
	PublicID      string   `json:"public_id"`
	Name          string   `json:"name"`
	Domains       []string `json:"domains"`
	Timezone      string   `json:"timezone"`
	Currency      string   `json:"currency"`
	LeadThreshold int      `json:"lead_threshold"`
	APIKey        string   `json:"api_key"`
}

func decodeSite(t *testing.T, out string) siteJSON {
	t.Helper()
	var s siteJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("not a site: %q", out)
	}
	return s
}

// TestDevServesStatsAsTheCommandLinePrintsThem: a site added with the
// command line gets an API key once; `opsmantik dev` refreshes the view at
// start and answers /api/stats with it; `opsmantik stats` prints the same
// answer; rotate-key replaces the key at once; `site set` changes the site
// with the same checks as `site add`.
func TestDevServesStatsAsTheCommandLinePrintsThem(t *testing.T) {
	t.Parallel()
	dbURL := devDatabase(t)
	env := []string{"DATABASE_URL=" + dbURL}
	addr := freeAddr(t)
	cmd := exec.Command(binary, "dev")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "OPSMANTIK_ADDR="+addr, "TELEGRAM_BOT_TOKEN=", "OPSMANTIK_DEMO_DATA=false")
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
	logs.waitFor(t, `"msg":"analytics refresh","trigger":"dev","ok":true`)
	logs.waitFor(t, `"msg":"opsmantik dev: serving"`)

	out, stderr, err := opsmantik(t, env, "site", "add", "--public-id", "shop", "--domain", "shop.example", "--timezone", "Asia/Tokyo")
	if err != nil {
		t.Fatalf("site add: %v %s", err, stderr)
	}
	site := decodeSite(t, out)
	if !strings.HasPrefix(site.APIKey, "omk_") || site.Timezone != "Asia/Tokyo" {
		t.Fatalf("site add printed %s", out)
	}
	if list, _, _ := opsmantik(t, env, "site", "list"); strings.Contains(list, site.APIKey) || strings.Contains(list, "api_key") {
		t.Errorf("site list shows the key: %s", list)
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, traffic_source, device_type, pageviews)
		VALUES ($1, gen_random_uuid(), now() - interval '3 days', now() - interval '3 days', now() - interval '3 days' + interval '1 minute', 'social', 'mobile', 2),
		       ($1, gen_random_uuid(), now(), now(), now(), 'direct', 'desktop', 1)`, site.ID); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := opsmantik(t, env, "run", "refresh-analytics"); err != nil ||
		!strings.Contains(stderr, `"msg":"analytics refresh","trigger":"cli","ok":true`) {
		t.Fatalf("run refresh-analytics: %v\n%s", err, stderr)
	}

	get := func(key, query string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/stats?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(site.APIKey, "site=shop&period=7d")
	var served stats.Answer
	if err := json.Unmarshal([]byte(body), &served); err != nil || code != 200 || served.Totals.Sessions != 2 ||
		served.ServedFrom.ViewDays != 6 || served.ServedFrom.LiveDays != 1 {
		t.Fatalf("/api/stats: %d %s", code, body)
	}
	out, stderr, err = opsmantik(t, env, "stats", "--site", "shop", "--period", "7d")
	var printed stats.Answer
	if err != nil || json.Unmarshal([]byte(out), &printed) != nil || !reflect.DeepEqual(printed, served) {
		t.Errorf("opsmantik stats: %v %s\n%s\nserved %+v", err, stderr, out, served)
	}
	if _, stderr, err := opsmantik(t, env, "stats", "--site", "shop", "--period", "1y"); err == nil || !strings.Contains(stderr, `period "1y"`) {
		t.Errorf("stats with a bad period: %v %s", err, stderr)
	}
	if _, stderr, err := opsmantik(t, env, "stats", "--site", "nope", "--period", "7d"); err == nil || !strings.Contains(stderr, `no site has public id "nope"`) {
		t.Errorf("stats of an unknown site: %v %s", err, stderr)
	}

	out, stderr, err = opsmantik(t, env, "site", "rotate-key", "--public-id", "shop")
	rotated := decodeSite(t, out)
	if err != nil || rotated.APIKey == site.APIKey || !strings.HasPrefix(rotated.APIKey, "omk_") || rotated.PublicID != "shop" {
		t.Fatalf("rotate-key: %v %s %s", err, stderr, out)
	}
	if code, _ := get(site.APIKey, "site=shop&period=7d"); code != 401 {
		t.Errorf("the old key after rotate-key: %d", code)
	}
	if code, _ := get(rotated.APIKey, "site=shop&period=7d"); code != 200 {
		t.Errorf("the new key: %d", code)
	}

	out, stderr, err = opsmantik(t, env, "site", "set", "--public-id", "shop", "--timezone", "America/Los_Angeles", "--currency", "usd",
		"--lead-threshold", "70", "--name", "Shop", "--domain", "Shop.Example", "--domain", "www.shop.example")
	set := decodeSite(t, out)
	if err != nil || set.Timezone != "America/Los_Angeles" || set.Currency != "USD" || set.LeadThreshold != 70 || set.Name != "Shop" ||
		!reflect.DeepEqual(set.Domains, []string{"shop.example", "www.shop.example"}) || set.APIKey != "" {
		t.Fatalf("site set: %v %s %s", err, stderr, out)
	}
	if out, _, err := opsmantik(t, env, "site", "set", "--public-id", "shop", "--lead-threshold", "0"); err != nil || decodeSite(t, out).Timezone != "America/Los_Angeles" {
		t.Errorf("site set of one field: %v %s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"site", "set", "--public-id", "nope", "--name", "x"}, `no site has public id "nope"`},
		{[]string{"site", "set", "--public-id", "shop"}, "nothing to change"},
		{[]string{"site", "set", "--name", "x"}, "--public-id"},
		{[]string{"site", "set", "--public-id", "shop", "--timezone", "Mars/Olympus"}, "timezone"},
		{[]string{"site", "set", "--public-id", "shop", "--currency", "EURO"}, "currency"},
		{[]string{"site", "set", "--public-id", "shop", "--lead-threshold", "101"}, "lead threshold 101"},
		{[]string{"site", "set", "--public-id", "shop", "--lead-threshold", "-1"}, "lead threshold -1"},
		{[]string{"site", "set", "--public-id", "shop", "--domain", "https://x.example/"}, "domain"},
		{[]string{"site", "rotate-key", "--public-id", "nope"}, `no site has public id "nope"`},
		{[]string{"site", "rotate-key"}, "usage"},
	} {
		if _, stderr, err := opsmantik(t, env, c.args...); err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: %v %q, want %q", c.args, err, stderr, c.want)
		}
	}

	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
}

func TestRunNamesTheRefreshJob(t *testing.T) {
	t.Parallel()
	if _, stderr, err := opsmantik(t, nil, "run"); err == nil || !strings.Contains(stderr, "refresh-analytics (every 1h0m0s)") {
		t.Errorf("%v %q", err, stderr)
	}
}
