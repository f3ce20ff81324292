package ingest

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

// counterTotals reads the sums the watchtower's error rate is made of.
func counterTotals(t *testing.T, e *testEnv) (requests, accepted, clientFailures, perClient int) {
	t.Helper()
	ctx := context.Background()
	if err := e.pool.QueryRow(ctx, `SELECT coalesce(sum(requests), 0), coalesce(sum(events_accepted), 0), coalesce(sum(client_failures), 0)
		FROM ingest_counters`).Scan(&requests, &accepted, &clientFailures); err != nil {
		t.Fatal(err)
	}
	if err := e.pool.QueryRow(ctx, `SELECT coalesce(sum(failures), 0) FROM ingest_client_failures`).Scan(&perClient); err != nil {
		t.Fatal(err)
	}
	return
}

// TestCountersAreWrittenOncePerIntervalAndOnShutdown: the first request of
// an idle process writes its counts at once; the next ones wait for the
// interval (here longer than the test) and are all there after Shutdown.
func TestCountersAreWrittenOncePerIntervalAndOnShutdown(t *testing.T) {
	e := newEnv(t, WithCounterFlush(time.Hour))
	for i := range 5 {
		r := e.post(t, body(t, map[string]any{"failures": 1, "sid": sid(i + 1), "events": []any{event(i+1, "pageview", testNow, nil)}}))
		if r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	if req, acc, cf, pc := counterTotals(t, e); req != 1 || acc != 1 || cf != 1 || pc != 1 {
		t.Fatalf("before the interval: requests %d, accepted %d, client failures %d (per client %d); want only the first request's", req, acc, cf, pc)
	}
	if err := e.handler.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if req, acc, cf, pc := counterTotals(t, e); req != 5 || acc != 5 || cf != 5 || pc != 5 {
		t.Fatalf("after Shutdown: requests %d, accepted %d, client failures %d (per client %d); want 5 each", req, acc, cf, pc)
	}
	if err := e.handler.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if req, _, _, _ := counterTotals(t, e); req != 5 {
		t.Fatalf("a second Shutdown wrote the counts again: %d requests", req)
	}
}

// TestPendingCountersAreWrittenByTheTimer: a process that receives no more
// requests still writes what it gathered, within about the interval.
func TestPendingCountersAreWrittenByTheTimer(t *testing.T) {
	e := newEnv(t, WithCounterFlush(50*time.Millisecond))
	for i := range 3 {
		if r := e.post(t, body(t, map[string]any{"sid": sid(i + 1), "events": []any{event(i+1, "pageview", testNow, nil)}})); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _, _, _ := counterTotals(t, e)
		if req == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 requests counted 5 s after the last one", req)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAFailedCounterWriteKeepsTheCountsInTheirMinute: while the table is
// unreachable the counts stay pending; the next write stores them under the
// minute they happened in, not the minute of the write.
func TestAFailedCounterWriteKeepsTheCountsInTheirMinute(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	c := newCounters(pool, time.Hour)
	clock := time.Date(2026, 11, 30, 10, 15, 30, 0, time.UTC)
	c.now = func() time.Time { return clock }
	c.add(counterRow{requests: 2, clientFailures: 3}, "client-a")
	if _, err := pool.Exec(ctx, `ALTER TABLE ingest_counters RENAME TO ingest_counters_away`); err != nil {
		t.Fatal(err)
	}
	if err := c.flush(ctx); err == nil {
		t.Fatal("the write succeeded without its table")
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE ingest_counters_away RENAME TO ingest_counters`); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Minute)
	c.add(counterRow{requests: 1}, "")
	if err := c.flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT bucket, sum(requests)::int, sum(client_failures)::int FROM ingest_counters GROUP BY bucket ORDER BY bucket`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type minute struct {
		bucket          time.Time
		requests, fails int
	}
	var got []minute
	for rows.Next() {
		var m minute
		if err := rows.Scan(&m.bucket, &m.requests, &m.fails); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	want := []minute{{time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC), 2, 3}, {time.Date(2026, 11, 30, 10, 17, 0, 0, time.UTC), 1, 0}}
	if len(got) != 2 || !got[0].bucket.Equal(want[0].bucket) || got[0].requests != 2 || got[0].fails != 3 ||
		!got[1].bucket.Equal(want[1].bucket) || got[1].requests != 1 {
		t.Fatalf("minutes %+v, want %+v", got, want)
	}
	var perClient int
	if err := pool.QueryRow(ctx, `SELECT failures FROM ingest_client_failures WHERE client = 'client-a' AND bucket = $1`, want[0].bucket).Scan(&perClient); err != nil || perClient != 3 {
		t.Fatalf("per-client failures %d (%v), want 3", perClient, err)
	}
}

// TestConcurrentCountingLosesNothing: requests counted from many goroutines
// while writes run concurrently add up exactly once.
func TestConcurrentCountingLosesNothing(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	c := newCounters(pool, 0)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if c.add(counterRow{requests: 1, eventsAccepted: 2, clientFailures: int64(i % 2)}, "client") && rand.IntN(4) == 0 {
					_ = c.flush(ctx)
				}
			}
		}()
	}
	wg.Wait()
	if err := c.flush(ctx); err != nil {
		t.Fatal(err)
	}
	var requests, accepted, fails, perClient int
	if err := pool.QueryRow(ctx, `SELECT sum(requests), sum(events_accepted), sum(client_failures) FROM ingest_counters`).Scan(&requests, &accepted, &fails); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT sum(failures) FROM ingest_client_failures`).Scan(&perClient); err != nil {
		t.Fatal(err)
	}
	if requests != workers*each || accepted != 2*workers*each || fails != workers*each/2 || perClient != fails {
		t.Fatalf("requests %d, accepted %d, client failures %d (per client %d); want %d, %d, %d", requests, accepted, fails, perClient,
			workers*each, 2*workers*each, workers*each/2)
	}
}
