package main

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

func TestSeedWritesHistoryAndReports(t *testing.T) {
	env := []string{"DATABASE_URL=" + dbtest.URL(dbtest.Name(t)), "LOG_LEVEL=warn"}
	if _, stderr, err := opsmantik(t, env, "site", "add", "--public-id", "demo", "--domain", "shop.example", "--timezone", "America/Sao_Paulo"); err != nil {
		t.Fatalf("site add: %v\n%s", err, stderr)
	}
	stdout, stderr, err := opsmantik(t, env, "seed", "--site", "demo", "--sessions", "2000", "--days", "7",
		"--seed", "5", "--now", "2026-11-10T12:00:00Z", "--chunk", "500", "--writers", "1")
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, stderr)
	}
	// Not a terminal: plain progress lines on stderr, one per quarter here.
	progress := regexp.MustCompile(`(?m)^seed: (\d+)/2000 sessions \((\d+)%\), \d+ rows, \d+ rows/s, \d+\.\ds$`)
	var seen []string
	for _, m := range progress.FindAllStringSubmatch(stderr, -1) {
		seen = append(seen, m[1]+"="+m[2]+"%")
	}
	if strings.Join(seen, " ") != "500=25% 1000=50% 1500=75% 2000=100%" {
		t.Errorf("progress %v, want a line per chunk here; stderr:\n%s", seen, stderr)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "\x1b[") {
		t.Errorf("terminal control characters on a non-terminal: %q", stderr)
	}
	summary := regexp.MustCompile(`(?m)^seeded 2000 sessions and (\d+) events \((\d+) rows\) for site demo \(America/Sao_Paulo, 2026-11-04\.\.2026-11-10\) in \d+\.\d\ds: \d+ rows/s \(seed 5, now 2026-11-10T12:00:00Z\)$`)
	if !summary.MatchString(stdout) {
		t.Errorf("stdout has no summary line:\n%s", stdout)
	}
	if !strings.Contains(stdout, "refreshed the daily view (refresh_daily_analytics('seed'))") {
		t.Errorf("stdout does not say the daily view was refreshed:\n%s", stdout)
	}

	pool, err := pgxpool.New(context.Background(), strings.TrimPrefix(env[0], "DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var sessions, events int64
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM events)`).Scan(&sessions, &events); err != nil {
		t.Fatal(err)
	}
	if m := summary.FindStringSubmatch(stdout); sessions != 2000 || m == nil || m[1] != itoa(events) {
		t.Errorf("%d sessions and %d events stored; summary %q", sessions, events, m)
	}

	// The same seed and clock again: refused, clearly, and nothing added.
	_, stderr, err = opsmantik(t, env, "seed", "--site", "demo", "--sessions", "2000", "--days", "7", "--seed", "5", "--now", "2026-11-10T12:00:00Z")
	if exitCode(err) != 1 || !strings.Contains(stderr, "already holds rows made with this seed") {
		t.Errorf("a repeated seed: exit %d, stderr %q", exitCode(err), stderr)
	}
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil || sessions != 2000 {
		t.Errorf("%d sessions after the refused run (%v), want 2000", sessions, err)
	}
}

func TestSeedUnknownSite(t *testing.T) {
	env := []string{"DATABASE_URL=" + dbtest.URL(dbtest.Name(t))}
	_, stderr, err := opsmantik(t, env, "seed", "--site", "nope", "--sessions", "10", "--days", "1")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", exitCode(err), stderr)
	}
	want := "opsmantik seed: unknown site \"nope\": create it first with `opsmantik site add --public-id nope --domain …`"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// Limits are checked before the database is asked anything (the URL here
// points at no server).
func TestSeedRefusesBadArguments(t *testing.T) {
	env := []string{"DATABASE_URL=postgres://nobody@127.0.0.1:1/none?sslmode=disable"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--site", "demo", "--sessions", "0", "--days", "1"}, "sessions: must be between 1 and 100000000, got 0"},
		{[]string{"--site", "demo", "--sessions", "-3", "--days", "1"}, "sessions: must be between 1 and 100000000, got -3"},
		{[]string{"--site", "demo", "--sessions", "100000001", "--days", "1"}, "sessions: must be between 1 and 100000000, got 100000001"},
		{[]string{"--site", "demo", "--sessions", "10", "--days", "0"}, "days: must be between 1 and 3650, got 0"},
		{[]string{"--site", "demo", "--sessions", "10", "--days", "3651"}, "days: must be between 1 and 3650, got 3651"},
		{[]string{"--site", "demo", "--sessions", "10"}, "days: must be between 1 and 3650, got 0"},
		{[]string{"--sessions", "10", "--days", "1"}, "site: required"},
		{[]string{"--site", "demo", "--sessions", "10", "--days", "1", "--now", "yesterday"}, `--now "yesterday": want an RFC 3339 time`},
		{[]string{"--site", "demo", "--sessions", "10", "--days", "1", "--chunk", "0"}, "--chunk and --writers must be at least 1"},
		{[]string{"--site", "demo", "--sessions", "10", "--days", "1", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--site", "demo", "--sessions", "ten", "--days", "1"}, `invalid value "ten" for flag -sessions`},
		{[]string{"--site", "demo", "--sessions", "10", "--days", "1", "--seed", "-1"}, `invalid value "-1" for flag -seed`},
	}
	for _, c := range cases {
		_, stderr, err := opsmantik(t, env, append([]string{"seed"}, c.args...)...)
		if code := exitCode(err); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("seed %v: exit %d, stderr %q; want exit 1 and %q", c.args, code, stderr, c.want)
		}
	}
	// The edges themselves are accepted: they get as far as the database.
	_, stderr, err := opsmantik(t, env, "seed", "--site", "demo", "--sessions", "100000000", "--days", "3650")
	if exitCode(err) != 1 || strings.Contains(stderr, "must be between") || !strings.Contains(stderr, "look up site") {
		t.Errorf("limits at their edges: exit %d, stderr %q; want only the database to fail", exitCode(err), stderr)
	}
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
