package ingest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Regression tests for the order- and data-dependent failures of issue 8:
// each fails on the single-statement store it replaced.

func TestNULCharactersAreStrippedNotRetriedForever(t *testing.T) {
	e := newEnv(t)
	ctx := map[string]any{"url": "https://shop.example/\u0000landing", "referrer": "https://www.google.com/\u0000",
		"utm_source": "goo\u0000gle", "lang": "tr\u0000", "tz": "Europe/\u0000Istanbul", "gclid": "Cj0\u0000K"}
	evs := []any{
		event(1, "pageview", testNow, map[string]any{"title": "Ho\u0000me", "url": "https://shop.example/\u0000"}),
		event(2, "phone_click", testNow, map[string]any{"target": "+90\u0000555"}),
		event(3, "form_submit", testNow, map[string]any{"form": "con\u0000tact"}),
		event(4, "custom", testNow, map[string]any{"name": "quo\u0000te", "props": map[string]any{"pl\u0000an": "p\u0000ro"}}),
	}
	r := e.post(t, body(t, map[string]any{"ctx": ctx, "events": evs}))
	if r.status != 200 || r.body["accepted"] != 4.0 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var data string
	if err := e.pool.QueryRow(context.Background(), `SELECT string_agg(url || data::text, ' ' ORDER BY id) FROM events`).Scan(&data); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(data, 0) || strings.Contains(data, `\u0000`) {
		t.Fatalf("NUL stored: %q", data)
	}
	for _, want := range []string{`"title": "Home"`, `"target": "+90555"`, `"form": "contact"`, `"name": "quote"`, `"plan": "pro"`} {
		if !strings.Contains(data, want) {
			t.Fatalf("%s missing from %s", want, data)
		}
	}
	s := e.sessions(t)[0]
	if *s.LandingURL != "https://shop.example/landing" || *s.UTMSource != "google" || *s.GCLID != "Cj0K" || *s.Timezone != "Europe/Istanbul" {
		t.Fatalf("session context kept NULs: %+v", s)
	}
}

// TestDataTheDatabaseRefusesIsA400: a value that violates a constraint (here
// one the test adds) is the client's data, not a server failure: 400
// invalid_payload, so that the tracker drops the batch instead of retrying
// it forever, and the request is not counted as a server failure.
func TestDataTheDatabaseRefusesIsA400(t *testing.T) {
	e := newEnv(t)
	if _, err := e.pool.Exec(context.Background(), `ALTER TABLE events ADD CONSTRAINT no_refuse CHECK (url NOT LIKE '%refuse-me%')`); err != nil {
		t.Fatal(err)
	}
	r := e.post(t, body(t, map[string]any{"events": []any{event(1, "pageview", testNow, map[string]any{"url": "https://shop.example/refuse-me"})}}))
	if r.status != 400 || r.body["error"] != "invalid_payload" || !strings.Contains(r.body["detail"].(string), "refused") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if n := e.count(t, `SELECT count(*) FROM sessions`); n != 0 {
		t.Fatalf("%d sessions stored from a refused batch (one transaction: nothing may stay)", n)
	}
	e.flushCounters(t)
	if n := e.count(t, `SELECT coalesce(sum(server_failures), 0)::int FROM ingest_counters`); n != 0 {
		t.Fatalf("refused data counted as %d server failures", n)
	}
	// A value the column cannot hold (class 22, here a length the test
	// imposes) is refused likewise.
	if _, err := e.pool.Exec(context.Background(), `ALTER TABLE sessions ALTER COLUMN utm_source TYPE varchar(5)`); err != nil {
		t.Fatal(err)
	}
	r = e.post(t, body(t, map[string]any{"ctx": map[string]any{"url": "https://shop.example/", "utm_source": "newsletter"},
		"events": []any{event(2, "pageview", testNow, map[string]any{"url": "https://shop.example/ok"})}}))
	if r.status != 400 || r.body["error"] != "invalid_payload" {
		t.Fatalf("value too long: %d %s", r.status, r.raw)
	}
	r = e.post(t, body(t, map[string]any{"events": []any{event(3, "pageview", testNow, map[string]any{"url": "https://shop.example/ok"})}}))
	if r.status != 200 {
		t.Fatalf("a clean batch after refused ones: %d %s", r.status, r.raw)
	}
}

// TestReturningFlagDoesNotDependOnDeliveryOrder: two tabs of one visitor, A
// from 10:00 and B from 10:05. Delivered in order, A is new and B returning;
// delivered B, A-later, A-earlier, the same.
func TestReturningFlagDoesNotDependOnDeliveryOrder(t *testing.T) {
	a0, b0, aLater := testNow.Add(-2*time.Hour), testNow.Add(-2*time.Hour+5*time.Minute), testNow.Add(-2*time.Hour+20*time.Minute)
	batch := func(s, id int, at time.Time) []byte {
		return body(t, map[string]any{"sid": sid(s), "vid": vid(1), "events": []any{event(id, "pageview", at, nil)}})
	}
	aEarlier, aLate, b := batch(1, 1, a0), batch(1, 2, aLater), batch(2, 3, b0)
	for _, order := range []struct {
		name    string
		batches [][]byte
	}{
		{"in order", [][]byte{aEarlier, b, aLate}},
		{"B, A-later, A-earlier", [][]byte{b, aLate, aEarlier}},
		{"A-later, B, A-earlier", [][]byte{aLate, b, aEarlier}},
	} {
		t.Run(order.name, func(t *testing.T) {
			e := newEnv(t)
			for _, body := range order.batches {
				if r := e.post(t, body); r.status != 200 {
					t.Fatal(r.raw)
				}
			}
			got := e.sessions(t)
			if got[0].IsReturning || !got[1].IsReturning {
				t.Fatalf("A returning %v, B returning %v; want false, true", got[0].IsReturning, got[1].IsReturning)
			}
			// B: one pageview (0) + returning (5).
			if got[0].LeadScore != 5 || got[1].LeadScore != 5 {
				t.Fatalf("scores A %d, B %d; want 5 (two pageviews) and 5 (returning)", got[0].LeadScore, got[1].LeadScore)
			}
		})
	}
}

// TestReplayWithAnotherLatencyStoresTheSameRows: the clock-skew correction
// is decided once, when the session is created, so a retry whose sent_at
// gives another latency (here across the one-minute threshold) stores the
// same times.
func TestReplayWithAnotherLatencyStoresTheSameRows(t *testing.T) {
	clientBehind := 59*time.Second + 500*time.Millisecond
	first := body(t, map[string]any{"sid": sid(1), "sent_at": testNow.Add(-clientBehind).UnixMilli(),
		"events": []any{event(1, "pageview", testNow.Add(-clientBehind-time.Minute), nil)}})
	second := body(t, map[string]any{"sid": sid(1), "sent_at": testNow.Add(-clientBehind - 3*time.Second).UnixMilli(),
		"events": []any{event(1, "pageview", testNow.Add(-clientBehind-time.Minute), nil), event(2, "heartbeat", testNow.Add(-clientBehind-30*time.Second), map[string]any{"state": "active"})}})
	once, twice := newEnv(t), newEnv(t)
	for _, r := range []response{once.post(t, first), twice.post(t, first), twice.post(t, second), once.post(t, second)} {
		if r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	if r := twice.post(t, second); r.status != 200 { // and once more, later still
		t.Fatal(r.raw)
	}
	a, b := once.sessions(t), twice.sessions(t)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("replays changed the row:\n%+v\n%+v", a[0], b[0])
	}
	if a[0].ClockSkewMS != 0 || !a[0].StartedAt.Equal(testNow.Add(-clientBehind-time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("skew %d ms, started %s", a[0].ClockSkewMS, a[0].StartedAt)
	}
}

func TestHeartbeatOnlyBatchStartsAtItsFirstHeartbeat(t *testing.T) {
	e := newEnv(t)
	h1, h2 := testNow.Add(-10*time.Minute), testNow.Add(-5*time.Minute)
	r := e.post(t, body(t, map[string]any{"events": []any{
		event(2, "heartbeat", h2, map[string]any{"state": "active", "active_ms": 90000}),
		event(1, "heartbeat", h1, map[string]any{"state": "active", "active_ms": 30000}),
	}}))
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	s := e.sessions(t)[0]
	if !s.StartedAt.Equal(h1) || !s.LastSeenAt.Equal(h2) || !s.LastActiveAt.Equal(h2) {
		t.Fatalf("started %s, last seen %s, last active %s; want %s, %s, %s", s.StartedAt, s.LastSeenAt, s.LastActiveAt, h1, h2, h2)
	}
}

// TestIdleHeartbeatsDoNotMakeALongVisit: a tab left open beats while idle or
// hidden; last_seen_at moves, last_active_at (and so the duration) does not.
func TestIdleHeartbeatsDoNotMakeALongVisit(t *testing.T) {
	e := newEnv(t)
	start := testNow.Add(-8 * time.Hour)
	batches := [][]any{{event(1, "pageview", start, nil), event(2, "heartbeat", start.Add(time.Minute), map[string]any{"state": "active"})}}
	id := 3
	for at := start.Add(11 * time.Minute); at.Before(testNow); at = at.Add(10 * time.Minute) {
		state := "idle"
		if id%2 == 0 {
			state = "hidden"
		}
		batches = append(batches, []any{event(id, "heartbeat", at, map[string]any{"state": state})})
		id++
	}
	// Delivered newest first: the order must not matter either.
	for i := len(batches) - 1; i >= 0; i-- {
		if r := e.post(t, body(t, map[string]any{"events": batches[i]})); r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	s := e.sessions(t)[0]
	if d := s.LastActiveAt.Sub(s.StartedAt); d != time.Minute {
		t.Fatalf("duration %s, want 1m (last seen %s)", d, s.LastSeenAt)
	}
	if s.LastSeenAt.Sub(s.StartedAt) < 7*time.Hour {
		t.Fatalf("last seen %s: the idle heartbeats were not merged", s.LastSeenAt)
	}
}

// TestClientFailuresAreCappedPerSession: one tab cannot report more than
// MaxSessionFailures failures in all, whatever it claims per request.
func TestClientFailuresAreCappedPerSession(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		r := e.post(t, body(t, map[string]any{"failures": 1000, "events": []any{event(i+1, "pageview", testNow, nil)}}))
		if r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	e.flushCounters(t)
	if n := e.count(t, `SELECT sum(client_failures)::int FROM ingest_counters`); n != MaxSessionFailures {
		t.Fatalf("counted %d client failures, want %d", n, MaxSessionFailures)
	}
	if n := e.count(t, `SELECT client_failures FROM sessions`); n != MaxSessionFailures {
		t.Fatalf("session records %d failures, want %d", n, MaxSessionFailures)
	}
}

// TestAServerFailureIsCountedOnceEndToEnd: the server counts its own 5xx;
// the tracker reports only unanswered attempts (a 5xx is an answer), so the
// retry that succeeds carries failures: 0 and the error rate sees one
// failure in two attempts, not two.
func TestAServerFailureIsCountedOnceEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `ALTER TABLE events RENAME TO events_away`); err != nil {
		t.Fatal(err)
	}
	batch := body(t, map[string]any{"failures": 0})
	if r := e.post(t, batch); r.status != 503 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if _, err := e.pool.Exec(ctx, `ALTER TABLE events_away RENAME TO events`); err != nil {
		t.Fatal(err)
	}
	// The tracker's retry after a 5xx: failures stays 0 (tracker/test: "a
	// network error, then a 5xx, then a 200 reports exactly 1").
	if r := e.post(t, batch); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	var requests, server, client int
	e.flushCounters(t)
	if err := e.pool.QueryRow(ctx, `SELECT sum(requests), sum(server_failures), sum(client_failures) FROM ingest_counters`).Scan(&requests, &server, &client); err != nil {
		t.Fatal(err)
	}
	if requests != 2 || server+client != 1 {
		t.Fatalf("requests %d, server failures %d, client failures %d: want 2 attempts, 1 failure", requests, server, client)
	}
}
