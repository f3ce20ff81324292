package watchtower_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// spoofingBatch is the request of the issue: a valid batch for a public site
// id, from a browser User-Agent, claiming 100 failed deliveries.
func spoofingBatch(site string, now time.Time) string {
	ms := now.UnixMilli()
	b, _ := json.Marshal(map[string]any{
		"v": 1, "site": site, "sid": uuid.NewString(), "vid": uuid.NewString(),
		"sent_at": ms, "failures": 100, "channel": "primary",
		"ctx":    map[string]any{"url": "https://shop.example/", "referrer": nil, "lang": "en", "tz": "UTC", "sw": 1920, "sh": 1080},
		"events": []map[string]any{{"id": uuid.NewString(), "type": "pageview", "ts": ms - 1000, "url": "https://shop.example/", "title": "Home"}},
	})
	return string(b)
}

// The spoofing request, sent through the real ingest handler, does not fire
// WT003 — not once, and not from one client with several sessions — while
// the installation has ordinary traffic. (The ingest side clamps failures to
// 10 and caps a session at 10; the watchtower leaves out the largest single
// client's reports, so what one IP address reports cannot move the rate.)
func TestTheSpoofingRequestDoesNotFireWT003(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// The ingest handler and the counters' buckets run on the real clock.
	now := time.Now().UTC()
	f.clock.Set(now)
	f.w = f.watchtower(t, f.pool, watchtower.Checks(f.cfg)[2])
	if _, err := sites.Add(context.Background(), f.pool, sites.NewSite{PublicID: "shop1", Name: "Shop", Domains: []string{"shop.example"}}); err != nil {
		t.Fatal(err)
	}
	// Ordinary browser traffic in the last hour, nothing failing.
	insertCounters(t, f.pool, now, counters{ago: 10 * time.Minute, requests: 100})

	h := ingest.New(f.pool)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for i := range 5 {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/sync", strings.NewReader(spoofingBatch("shop1", time.Now())))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.Header.Set("Origin", "https://shop.example")
		req.Header.Set("User-Agent", browserUA)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("spoofing request %d: %d %s, want it stored (200)", i+1, res.StatusCode, body)
		}
	}

	// The handler writes its counters about once a second; Shutdown writes
	// what it still holds.
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := f.run(t)
	wt003 := alertOf(r, "WT003")
	if wt003.Outcome != "pass" || wt003.Alert != watchtower.AlertNone || len(f.srv.Messages()) != 0 {
		t.Fatalf("after the spoofing requests WT003 is %+v, messages %q; want it judged and passing", wt003, f.texts(0))
	}
	// The requests were counted as browser requests, and whatever failures
	// they were credited with come from one client and are left out.
	if wt003.Figures["requests"] != int64(105) || wt003.Figures["client_failures"] != int64(0) || wt003.Figures["server_failures"] != int64(0) {
		t.Errorf("WT003 figures %v; want 105 requests and no counted failures", wt003.Figures)
	}
	if c := wt003.Figures["clients_reporting"].(int64); c > 1 {
		t.Errorf("%d clients reporting, want at most the one test client", c)
	}
}

// A real server failure rate fires whatever the clients report; what a
// single client reports alone cannot. Each case at its edge.
func TestWT003FiresOnARealFailureRateButNotOnOneClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	check := watchtower.Checks(f.cfg)[2]
	for _, tc := range []struct {
		name    string
		server  int64
		clients []clientFailures
		failing bool
		counted int64
	}{
		{"a real 6 % server failure rate", 6, nil, true, 0},
		{"exactly 5 % server failures", 5, nil, false, 0},
		{"5 % server failures and unanswered attempts from three clients", 5,
			[]clientFailures{{time.Minute, "a", 1}, {2 * time.Minute, "b", 1}, {3 * time.Minute, "c", 1}}, true, 2},
		{"one client reporting 1,000 failures on top of 5 %", 5,
			[]clientFailures{{time.Minute, "x", 10}, {2 * time.Minute, "x", 990}}, false, 0},
		{"no server failures, one client reporting every minute", 0,
			[]clientFailures{{time.Minute, "x", 10}, {10 * time.Minute, "x", 10}, {20 * time.Minute, "x", 10}, {59 * time.Minute, "x", 10}}, false, 0},
		// Without x, y's 3 are 4 + 3 failures in 103 attempts: 6.8 %.
		{"two clients: the larger is left out, the other counts", 4,
			[]clientFailures{{time.Minute, "x", 10}, {time.Minute, "y", 3}}, true, 3},
	} {
		tx, err := f.pool.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		insertCounters(t, tx, t0, counters{ago: time.Minute, requests: 100, server: tc.server})
		insertClientFailures(t, tx, t0, tc.clients...)
		out, err := check.Measure(context.Background(), tx, t0)
		_ = tx.Rollback(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if out.Skipped || out.Failing != tc.failing || out.Figures["client_failures"] != tc.counted {
			t.Errorf("%s: failing %v skipped %v, figures %v; want failing %v with %d counted client failures",
				tc.name, out.Failing, out.Skipped, out.Figures, tc.failing, tc.counted)
		}
	}
}

// The alarm shows the server part and the client part apart.
func TestTheWT003MessageShowsTheServerAndTheClientPart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.watchtower(t, f.pool, watchtower.Checks(f.cfg)[2])
	insertCounters(t, f.pool, t0, counters{ago: time.Minute, requests: 100, server: 5})
	insertClientFailures(t, f.pool, t0, clientFailures{time.Minute, "a", 1}, clientFailures{time.Minute, "b", 1}, clientFailures{time.Minute, "c", 1})
	f.run(t)
	wantTexts(t, "5 % and three clients", f.texts(0),
		"🚨 [CRITICAL] WT003 INGEST_ERROR_RATE\nIngest error rate 6.86% over the last 1h (7 failures in 102 attempts), threshold 5%. "+
			"Server part: 5 failures in 100 browser requests. Client part: 2 unanswered attempts counted of 3 reported by 3 clients (the largest single client's 1 left out).\n")
	for _, want := range []string{"server_failures: 5\n", "client_failures: 2\n", "client_failures_reported: 3\n", "client_failures_largest_client: 1\n"} {
		if !strings.Contains(f.texts(0)[0], want) {
			t.Errorf("the message lacks %q:\n%s", want, f.texts(0)[0])
		}
	}
}
