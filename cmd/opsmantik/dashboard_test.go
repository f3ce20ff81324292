package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/dashboard"
)

// startDevOut starts `opsmantik dev` and returns its stdout lines up to the
// dashboard line, and a stop function.
func startDevOut(t *testing.T, dbURL, addr string, extra ...string) ([]string, func()) {
	t.Helper()
	cmd := exec.Command(binary, "dev")
	cmd.Env = append(append(os.Environ(), "DATABASE_URL="+dbURL, "OPSMANTIK_ADDR="+addr, "TELEGRAM_BOT_TOKEN="), extra...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []string, 1)
	go func() {
		var got []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			got = append(got, sc.Text())
			if strings.HasPrefix(sc.Text(), "Dashboard: ") {
				lines <- got
				got = nil
			}
		}
		close(lines)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	select {
	case got, ok := <-lines:
		if !ok {
			stop()
			t.Fatalf("dev exited: %s", stderr.String())
		}
		return got, stop
	case <-time.After(120 * time.Second):
		stop()
		t.Fatalf("dev did not print its dashboard line: %s", stderr.String())
	}
	return nil, stop
}

var dashboardLine = regexp.MustCompile(`^Dashboard: (http://\S+/dashboard)\?site=demo  site demo, API key (omk_\S+) `)

func statsStatus(t *testing.T, base, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/stats?site=demo&period=90d", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestDevDemoDataAndDashboard: the first start gives the demo site 90 days
// of sample data and says so in one line; every start prints the dashboard's
// URL and a fresh key for the demo site that /api/stats accepts; a later
// start writes no more data; OPSMANTIK_DEMO_DATA=false writes none.
func TestDevDemoDataAndDashboard(t *testing.T) {
	t.Parallel()
	dbURL := devDatabase(t)
	addr := freeAddr(t)
	base := "http://" + addr

	first, stop := startDevOut(t, dbURL, addr)
	seeded := 0
	for _, l := range first {
		if strings.HasPrefix(l, "First start: gave the demo site 90 days of sample data (20000 sessions, ") && strings.Contains(l, "OPSMANTIK_DEMO_DATA=false skips this") {
			seeded++
		}
	}
	m := dashboardLine.FindStringSubmatch(first[len(first)-1])
	if seeded != 1 || m == nil || m[1] != base+"/dashboard" {
		stop()
		t.Fatalf("first start printed %q", first)
	}
	key1 := m[2]
	if page := get(t, base+"/dashboard"); page != string(dashboard.Page()) {
		t.Errorf("/dashboard is not the page (%d bytes)", len(page))
	}
	status, body := statsStatus(t, base, key1)
	if status != 200 || !strings.Contains(body, `"sessions":`) || strings.Contains(body, `"totals":{"sessions":0`) {
		t.Errorf("demo stats with the printed key: %d %.300s", status, body)
	}
	stop()

	second, stop := startDevOut(t, dbURL, addr)
	defer stop()
	for _, l := range second {
		if strings.HasPrefix(l, "First start") {
			t.Errorf("the second start seeded again: %q", l)
		}
	}
	m = dashboardLine.FindStringSubmatch(second[len(second)-1])
	if m == nil || m[2] == key1 {
		t.Fatalf("second start printed %q (first key %s)", second, key1)
	}
	if status, _ := statsStatus(t, base, key1); status != 401 {
		t.Errorf("the previous start's key: %d, want 401", status)
	}
	if status, body2 := statsStatus(t, base, m[2]); status != 200 || body2[:200] != body[:200] {
		t.Errorf("the new key: %d, or different totals: %.200s", status, body2)
	}
}

func TestDevWithoutDemoData(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	lines, stop := startDevOut(t, devDatabase(t), addr, "OPSMANTIK_DEMO_DATA=false")
	defer stop()
	for _, l := range lines {
		if strings.HasPrefix(l, "First start") {
			t.Errorf("OPSMANTIK_DEMO_DATA=false seeded: %q", l)
		}
	}
	m := dashboardLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("printed %q", lines)
	}
	if status, body := statsStatus(t, "http://"+addr, m[2]); status != 200 || !strings.Contains(body, `"totals":{"sessions":0,`) {
		t.Errorf("without demo data: %d %.200s", status, body)
	}
}
