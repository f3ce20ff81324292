package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsmantik/opsmantik/pkg/protocol"
)

// ErrFailures is returned (wrapped) by Run when any request failed with a 5xx
// or a network error: the server could not store data it was sent.
var ErrFailures = errors.New("requests failed")

// Config configures Run.
type Config struct {
	URL         string     // the sync endpoint
	Visitors    int        // visits to play, at least 1
	Concurrency int        // visits in flight at once; 4 if zero
	Generator   *Generator // makes the visits
	// Client sends the requests; if nil, a client with a 10 s timeout and
	// enough idle connections for Concurrency.
	Client *http.Client
}

// Summary is what a run sent and what the server answered.
type Summary struct {
	URL      string
	Seed     uint64
	Visitors int // visits played to the end
	Batches  int // requests sent (including failed ones)
	Events   int // events in those requests

	Status        map[int]int    // responses by HTTP status
	Errors        map[string]int // non-2xx responses by their "error" field
	NetworkErrors int            // requests with no response (refused, reset, timeout)
	BadResponses  int            // 2xx responses whose body was not the protocol's JSON

	Accepted      int            // sums of the 200 responses' figures
	Duplicates    int            //
	Rejected      int            //
	RejectReasons map[string]int // rejected events by reason

	P50, P99 time.Duration // request latency
	Elapsed  time.Duration
}

// ServerErrors returns the number of 5xx responses.
func (s *Summary) ServerErrors() int {
	n := 0
	for code, c := range s.Status {
		if code >= 500 {
			n += c
		}
	}
	return n
}

// Failed reports whether any request got a 5xx or a network error.
func (s *Summary) Failed() bool {
	return s.ServerErrors() > 0 || s.NetworkErrors > 0
}

// Print writes the summary for a person.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "simulate: %d visitors to %s in %s (seed %d)\n", s.Visitors, s.URL, s.Elapsed.Round(time.Millisecond), s.Seed)
	fmt.Fprintf(w, "  batches:    %d (%d events)\n", s.Batches, s.Events)
	fmt.Fprintf(w, "  status:     %s\n", countsOf(s.Status))
	if len(s.Errors) > 0 {
		fmt.Fprintf(w, "  errors:     %s\n", countsOf(s.Errors))
	}
	fmt.Fprintf(w, "  network errors: %d\n", s.NetworkErrors)
	if s.BadResponses > 0 {
		fmt.Fprintf(w, "  bad 2xx bodies: %d\n", s.BadResponses)
	}
	fmt.Fprintf(w, "  events:     %d accepted, %d duplicates, %d rejected", s.Accepted, s.Duplicates, s.Rejected)
	if len(s.RejectReasons) > 0 {
		fmt.Fprintf(w, " (%s)", countsOf(s.RejectReasons))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  latency:    p50 %s, p99 %s\n", roundLatency(s.P50), roundLatency(s.P99))
	if s.Failed() {
		fmt.Fprintf(w, "  FAILED:     %d server errors (5xx), %d network errors\n", s.ServerErrors(), s.NetworkErrors)
	}
}

// Run plays cfg.Visitors visits against cfg.URL, each visit's batches in
// order, cfg.Concurrency visits at a time. It returns the summary with an
// error wrapping ErrFailures if any request got a 5xx or a network error, or
// the context's error if ctx ended first (the summary then covers what was sent).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := checkURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Visitors < 1 {
		return nil, fmt.Errorf("visitors %d: want at least 1", cfg.Visitors)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("concurrency %d: want at least 1", cfg.Concurrency)
	}
	if cfg.Generator == nil {
		return nil, errors.New("no generator")
	}
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
		defer client.CloseIdleConnections()
	}

	start := time.Now()
	jobs := make(chan struct{})
	tallies := make([]*tally, min(cfg.Concurrency, cfg.Visitors))
	var wg sync.WaitGroup
	for i := range tallies {
		t := newTally()
		tallies[i] = t
		wg.Go(func() {
			for range jobs {
				v := cfg.Generator.Visit()
				if t.play(ctx, client, cfg.URL, v) {
					t.Visitors++
				}
			}
		})
	}
feed:
	for range cfg.Visitors {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()

	s := merge(tallies)
	s.URL, s.Seed, s.Elapsed = cfg.URL, cfg.Generator.Seed(), time.Since(start)
	if err := ctx.Err(); err != nil {
		return s, err
	}
	if s.Failed() {
		return s, fmt.Errorf("%w: %d server errors (5xx), %d network errors", ErrFailures, s.ServerErrors(), s.NetworkErrors)
	}
	return s, nil
}

// tally is one worker's counts, merged at the end so workers share no lock.
type tally struct {
	Summary
	latencies []time.Duration
}

func newTally() *tally {
	return &tally{Summary: Summary{
		Status: map[int]int{}, Errors: map[string]int{}, RejectReasons: map[string]int{},
	}}
}

// response is the sync endpoint's answer, success or error: the
// protocol's two answers in one (OK tells a body that is not the protocol's).
type response struct {
	OK         *bool                `json:"ok"`
	Accepted   int                  `json:"accepted"`
	Duplicates int                  `json:"duplicates"`
	Rejected   []protocol.Rejection `json:"rejected"`
	Error      string               `json:"error"`
}

// play sends a visit's batches in order and reports whether it got to the
// end (ctx did not stop it). A failed batch is counted and the visit goes on,
// as later batches of a real tab would.
func (t *tally) play(ctx context.Context, client *http.Client, endpoint string, v Visit) bool {
	for _, b := range v.Batches {
		if ctx.Err() != nil {
			return false
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b.Body))
		if err != nil {
			panic("simulate: request for a checked URL: " + err.Error())
		}
		req.Header = b.Header()
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return false // stopped, not a failure of the server
			}
			t.Batches++
			t.Events += b.Events
			t.NetworkErrors++
			continue
		}
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.latencies = append(t.latencies, time.Since(began))
		t.Batches++
		t.Events += b.Events
		if readErr != nil {
			if ctx.Err() != nil {
				return false
			}
			t.NetworkErrors++
			continue
		}
		t.Status[resp.StatusCode]++
		t.record(resp.StatusCode, body)
	}
	return true
}

func (t *tally) record(status int, body []byte) {
	var r response
	err := json.Unmarshal(body, &r)
	if status < 200 || status > 299 {
		if err == nil && r.Error != "" {
			t.Errors[fmt.Sprintf("%d %s", status, r.Error)]++
		}
		return
	}
	if err != nil || r.OK == nil || !*r.OK {
		t.BadResponses++
		return
	}
	t.Accepted += r.Accepted
	t.Duplicates += r.Duplicates
	t.Rejected += len(r.Rejected)
	for _, rej := range r.Rejected {
		t.RejectReasons[rej.Reason]++
	}
}

func merge(tallies []*tally) *Summary {
	s := newTally().Summary
	var lat []time.Duration
	for _, t := range tallies {
		s.Visitors += t.Visitors
		s.Batches += t.Batches
		s.Events += t.Events
		s.NetworkErrors += t.NetworkErrors
		s.BadResponses += t.BadResponses
		s.Accepted += t.Accepted
		s.Duplicates += t.Duplicates
		s.Rejected += t.Rejected
		addCounts(s.Status, t.Status)
		addCounts(s.Errors, t.Errors)
		addCounts(s.RejectReasons, t.RejectReasons)
		lat = append(lat, t.latencies...)
	}
	slices.Sort(lat)
	s.P50, s.P99 = percentile(lat, 50), percentile(lat, 99)
	return &s
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

func addCounts[K comparable](dst, src map[K]int) {
	for k, v := range src {
		dst[k] += v
	}
}

// countsOf formats counts as "k: n, k: n" in key order, or "none".
func countsOf[K int | string](m map[K]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func checkURL(endpoint string) error {
	_, err := OriginOf(endpoint)
	return err
}
