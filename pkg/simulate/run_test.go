package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is an in-process sync endpoint: it records every request and
// answers like the protocol, rejecting the first event of every batch of two
// or more so that rejection totals are exercised too.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

type recorded struct {
	method, path string
	header       http.Header
	payload      Payload
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := rec.inFlight.Add(1)
	defer rec.inFlight.Add(-1)
	for {
		m := rec.maxIn.Load()
		if n <= m || rec.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_json"}`)
		return
	}
	rec.mu.Lock()
	rec.requests = append(rec.requests, recorded{r.Method, r.URL.Path, r.Header.Clone(), p})
	rec.mu.Unlock()
	accepted, rejected := len(p.Events), []string{}
	if len(p.Events) >= 2 {
		accepted--
		rejected = append(rejected, `{"index":0,"reason":"ts_out_of_range"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"accepted":%d,"duplicates":0,"rejected":[%s]}`, accepted, strings.Join(rejected, ","))
}

func TestRunPlaysVisitsThroughTheAPI(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	const visitors, concurrency = 60, 3

	// The same seed and clock make the same visits, so the expected totals are exact.
	var wantBatches, wantEvents, wantRejected int
	expect := newTestGenerator(t, 8)
	for range visitors {
		for _, b := range expect.Visit().Batches {
			wantBatches++
			wantEvents += b.Events
			if b.Events >= 2 {
				wantRejected++
			}
		}
	}

	s, err := Run(context.Background(), Config{
		URL: srv.URL + "/api/sync", Visitors: visitors, Concurrency: concurrency,
		Generator: newTestGenerator(t, 8),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if len(rec.requests) != wantBatches {
		t.Fatalf("server got %d requests, want %d", len(rec.requests), wantBatches)
	}
	if m := rec.maxIn.Load(); m > concurrency {
		t.Errorf("%d requests in flight at once, want at most %d", m, concurrency)
	}
	sessions := map[string]int64{} // sid -> ts of the last event received
	events := 0
	for _, r := range rec.requests {
		if r.method != http.MethodPost || r.path != "/api/sync" {
			t.Fatalf("%s %s, want POST /api/sync", r.method, r.path)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain;charset=UTF-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if o := r.header.Get("Origin"); o != "http://127.0.0.1:8080" {
			t.Fatalf("Origin %q", o)
		}
		if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "Mozilla/5.0 (") {
			t.Fatalf("User-Agent %q is not a browser's", ua)
		}
		// A visit's batches are sent in order, one at a time.
		if last, ok := sessions[r.payload.SID]; ok && r.payload.Events[0].TS < last {
			t.Fatalf("session %s: a batch arrived after a later one", r.payload.SID)
		}
		sessions[r.payload.SID] = r.payload.Events[len(r.payload.Events)-1].TS
		events += len(r.payload.Events)
	}
	if len(sessions) != visitors || events != wantEvents {
		t.Fatalf("server got %d sessions and %d events, want %d and %d", len(sessions), events, visitors, wantEvents)
	}

	if s.Visitors != visitors || s.Batches != wantBatches || s.Events != wantEvents {
		t.Errorf("summary: %d visitors, %d batches, %d events; want %d, %d, %d",
			s.Visitors, s.Batches, s.Events, visitors, wantBatches, wantEvents)
	}
	if s.Status[200] != wantBatches || len(s.Status) != 1 || s.NetworkErrors != 0 || s.BadResponses != 0 || s.Failed() {
		t.Errorf("summary statuses %v, %d network errors, %d bad bodies", s.Status, s.NetworkErrors, s.BadResponses)
	}
	if s.Accepted != wantEvents-wantRejected || s.Rejected != wantRejected || s.Duplicates != 0 ||
		s.RejectReasons["ts_out_of_range"] != wantRejected {
		t.Errorf("summary: %d accepted, %d rejected %v; want %d and %d",
			s.Accepted, s.Rejected, s.RejectReasons, wantEvents-wantRejected, wantRejected)
	}
	if s.P50 <= 0 || s.P99 < s.P50 || s.Elapsed <= 0 || s.Seed != 8 || s.URL != srv.URL+"/api/sync" {
		t.Errorf("summary: p50 %s, p99 %s, elapsed %s, seed %d, url %s", s.P50, s.P99, s.Elapsed, s.Seed, s.URL)
	}

	var out strings.Builder
	s.Print(&out)
	for _, want := range []string{
		fmt.Sprintf("%d visitors to %s", visitors, s.URL),
		"(seed 8)",
		fmt.Sprintf("batches:    %d (%d events)", wantBatches, wantEvents),
		fmt.Sprintf("status:     200: %d", wantBatches),
		"network errors: 0",
		fmt.Sprintf("%d accepted, 0 duplicates, %d rejected (ts_out_of_range: %d)", wantEvents-wantRejected, wantRejected, wantRejected),
		"latency:    p50 ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "FAILED") {
		t.Errorf("a clean run printed FAILED:\n%s", out.String())
	}
}

func TestRunReportsServerErrorsAndFails(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		http.Error(w, "database down", http.StatusInternalServerError)
	}))
	defer srv.Close()

	s, err := Run(context.Background(), Config{URL: srv.URL, Visitors: 5, Generator: newTestGenerator(t, 1)})
	if !errors.Is(err, ErrFailures) {
		t.Fatalf("Run error %v, want ErrFailures", err)
	}
	if s == nil || !s.Failed() || s.ServerErrors() != s.Batches || s.Status[500] != int(got.Load()) || s.Batches == 0 {
		t.Fatalf("summary %+v after %d requests", s, got.Load())
	}
	if s.Visitors != 5 {
		t.Errorf("%d visitors played, want all 5 despite failures", s.Visitors)
	}
	var out strings.Builder
	s.Print(&out)
	if !strings.Contains(out.String(), fmt.Sprintf("FAILED:     %d server errors (5xx), 0 network errors", s.Batches)) ||
		!strings.Contains(out.String(), fmt.Sprintf("500: %d", s.Batches)) {
		t.Errorf("summary does not report the failures:\n%s", out.String())
	}
}

func TestRunReportsNetworkErrorsAndFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now

	s, err := Run(context.Background(), Config{URL: url, Visitors: 3, Concurrency: 2, Generator: newTestGenerator(t, 1)})
	if !errors.Is(err, ErrFailures) {
		t.Fatalf("Run error %v, want ErrFailures", err)
	}
	if s.NetworkErrors == 0 || s.NetworkErrors != s.Batches || len(s.Status) != 0 || !s.Failed() {
		t.Fatalf("summary: %d network errors, %d batches, statuses %v", s.NetworkErrors, s.Batches, s.Status)
	}
}

func TestRunCountsClientErrorsWithoutFailing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"ok":false,"error":"origin_not_allowed"}`)
	}))
	defer srv.Close()

	s, err := Run(context.Background(), Config{URL: srv.URL, Visitors: 4, Generator: newTestGenerator(t, 2)})
	if err != nil {
		t.Fatalf("Run: %v (4xx is reported, not a failure)", err)
	}
	if s.Status[403] != s.Batches || s.Errors["403 origin_not_allowed"] != s.Batches || s.Accepted != 0 || s.Failed() {
		t.Fatalf("summary: statuses %v, errors %v", s.Status, s.Errors)
	}
	var out strings.Builder
	s.Print(&out)
	if !strings.Contains(out.String(), fmt.Sprintf("errors:     403 origin_not_allowed: %d", s.Batches)) {
		t.Errorf("summary does not name the error:\n%s", out.String())
	}
}

func TestRunCountsSuccessBodiesThatAreNotTheProtocols(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>a proxy's page</html>")
	}))
	defer srv.Close()

	s, err := Run(context.Background(), Config{URL: srv.URL, Visitors: 2, Generator: newTestGenerator(t, 2)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s.BadResponses != s.Batches || s.Accepted != 0 {
		t.Fatalf("summary: %d bad bodies of %d batches", s.BadResponses, s.Batches)
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) == 5 {
			cancel()
		}
		_, _ = io.WriteString(w, `{"ok":true,"accepted":1,"duplicates":0,"rejected":[]}`)
	}))
	defer srv.Close()

	s, err := Run(ctx, Config{URL: srv.URL, Visitors: 1000, Concurrency: 2, Generator: newTestGenerator(t, 3)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	if s == nil || s.Visitors >= 1000 || s.NetworkErrors != 0 || int(got.Load()) > 5+2 {
		t.Fatalf("after cancel: summary %+v, %d requests", s, got.Load())
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	g := newTestGenerator(t, 1)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no visitors", Config{URL: "http://127.0.0.1:1/api/sync", Visitors: 0, Generator: g}},
		{"negative concurrency", Config{URL: "http://127.0.0.1:1/api/sync", Visitors: 1, Concurrency: -1, Generator: g}},
		{"relative URL", Config{URL: "/api/sync", Visitors: 1, Generator: g}},
		{"no scheme", Config{URL: "127.0.0.1:8080/api/sync", Visitors: 1, Generator: g}},
		{"no generator", Config{URL: "http://127.0.0.1:1/api/sync", Visitors: 1}},
	}
	for _, tt := range tests {
		if s, err := Run(context.Background(), tt.cfg); err == nil || s != nil {
			t.Errorf("%s: Run = %v, %v; want an error and no summary", tt.name, s, err)
		}
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		d := make([]time.Duration, len(ns))
		for i, n := range ns {
			d[i] = time.Duration(n) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3), 50, 2 * time.Millisecond},
		{ms(1, 2, 3), 99, 3 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %d) = %s, want %s", tt.sorted, tt.p, got, tt.want)
		}
	}
}
