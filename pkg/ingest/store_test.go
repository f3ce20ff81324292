package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

type sessionRow struct {
	SiteID                                                 int64
	ID, VisitorID                                          string
	StartedAt, LastSeenAt, LastActiveAt                    time.Time
	ActiveAt                                               *time.Time
	ClockSkewMS                                            int64
	ClientFailures                                         int
	LandingURL, Referrer, ReferrerHost                     *string
	UTMSource, UTMMedium, UTMCampaign, UTMTerm, UTMContent *string
	GCLID, WBRAID, GBRAID                                  *string
	TrafficSource, DeviceType, Browser, OS                 string
	Language, Timezone                                     *string
	ScreenWidth, ScreenHeight                              *int
	IsBot, IsReturning                                     bool
	Pageviews, EventCount                                  int
	EngagedMS                                              int64
	MaxScroll                                              int
	PhoneClicks, WhatsAppClicks, FormSubmits, CustomEvents int
	LeadScore                                              int
}

const sessionRowSQL = `
SELECT site_id, id::text, coalesce(visitor_id::text, ''), started_at, last_seen_at, last_active_at, active_at,
       clock_skew_ms, client_failures, landing_url, referrer, referrer_host,
       utm_source, utm_medium, utm_campaign, utm_term, utm_content, gclid, wbraid, gbraid,
       traffic_source, device_type, browser, os, language, timezone, screen_width, screen_height,
       is_bot, is_returning, pageviews, event_count, engaged_ms, max_scroll,
       phone_clicks, whatsapp_clicks, form_submits, custom_events, lead_score
FROM sessions ORDER BY id`

func (e *testEnv) sessions(t *testing.T) []sessionRow {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), sessionRowSQL)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sessionRow, error) {
		var s sessionRow
		err := r.Scan(&s.SiteID, &s.ID, &s.VisitorID, &s.StartedAt, &s.LastSeenAt, &s.LastActiveAt, &s.ActiveAt,
			&s.ClockSkewMS, &s.ClientFailures, &s.LandingURL, &s.Referrer, &s.ReferrerHost,
			&s.UTMSource, &s.UTMMedium, &s.UTMCampaign, &s.UTMTerm, &s.UTMContent, &s.GCLID, &s.WBRAID, &s.GBRAID,
			&s.TrafficSource, &s.DeviceType, &s.Browser, &s.OS, &s.Language, &s.Timezone, &s.ScreenWidth, &s.ScreenHeight,
			&s.IsBot, &s.IsReturning, &s.Pageviews, &s.EventCount, &s.EngagedMS, &s.MaxScroll,
			&s.PhoneClicks, &s.WhatsAppClicks, &s.FormSubmits, &s.CustomEvents, &s.LeadScore)
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type eventRow struct {
	SiteID              int64
	ID, SessionID, Type string
	OccurredAt          time.Time
	URL                 *string
	Data                string
}

func (e *testEnv) events(t *testing.T) []eventRow {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT site_id, id::text, session_id::text, type, occurred_at, url, data::text FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[eventRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sid(n int) string { return fmt.Sprintf("0193f4c2-0000-4000-8000-%012d", n) }
func vid(n int) string { return fmt.Sprintf("6f1c0000-0000-4000-8000-%012d", n) }

func TestSessionAggregatesAndLeadScore(t *testing.T) {
	e := newEnv(t)
	t0 := testNow.Add(-20 * time.Minute)
	ctx := map[string]any{"url": "https://shop.example/landing", "referrer": "https://www.google.com/"}
	send := func(events ...any) {
		t.Helper()
		r := e.post(t, body(t, map[string]any{"sid": sid(1), "vid": vid(1), "ctx": ctx, "events": events}))
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	}
	// Batches arrive out of order; one is repeated.
	b2 := []any{
		event(3, "heartbeat", t0.Add(2*time.Minute+10*time.Second), map[string]any{"active_ms": 130000, "scroll": 95}),
		event(4, "phone_click", t0.Add(2*time.Minute+20*time.Second), map[string]any{"target": "+905551112233"}),
		event(5, "pageview", t0.Add(3*time.Minute), nil),
	}
	send(b2...)
	send(event(1, "pageview", t0, nil), event(2, "heartbeat", t0.Add(time.Minute), map[string]any{"active_ms": 40000, "scroll": 60}))
	send(b2...)
	got := e.sessions(t)
	if len(got) != 1 {
		t.Fatalf("%d sessions", len(got))
	}
	s := got[0]
	// 45 (phone) + 10 (engaged ≥ 2 min) + 10 (scroll ≥ 90 %) + 5 (2 pageviews) = 70.
	want := struct {
		pageviews, events, phone, scroll, score int
		engaged                                 int64
		started, last                           time.Time
		source                                  string
	}{2, 3, 1, 95, 70, 130000, t0, t0.Add(3 * time.Minute), SourceOrganicSearch}
	if s.Pageviews != want.pageviews || s.EventCount != want.events || s.PhoneClicks != want.phone ||
		s.MaxScroll != want.scroll || s.LeadScore != want.score || s.EngagedMS != want.engaged ||
		!s.StartedAt.Equal(want.started) || !s.LastSeenAt.Equal(want.last) || s.TrafficSource != want.source ||
		s.DeviceType != DeviceDesktop || s.IsReturning {
		t.Fatalf("session = %+v", s)
	}

	// The same visitor comes back: the new session is returning (+5).
	later := testNow.Add(-5 * time.Minute)
	r := e.post(t, body(t, map[string]any{"sid": sid(2), "vid": vid(1), "ctx": map[string]any{"url": "https://shop.example/"},
		"events": []any{event(10, "pageview", later, nil), event(11, "form_submit", later.Add(time.Minute), map[string]any{"form": "contact"})}}))
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	s2 := e.sessions(t)[1]
	if !s2.IsReturning || s2.LeadScore != 55 || s2.TrafficSource != SourceDirect {
		t.Fatalf("returning session = %+v", s2)
	}
}

func TestReturningVisitorWhenTheLaterSessionArrivesFirst(t *testing.T) {
	e := newEnv(t)
	early, late := testNow.Add(-3*time.Hour), testNow.Add(-time.Hour)
	send := func(s int, at time.Time, id int, typ string) {
		r := e.post(t, body(t, map[string]any{"sid": sid(s), "vid": vid(7), "events": []any{event(id, typ, at, nil)}}))
		if r.status != 200 {
			t.Fatal(r.raw)
		}
	}
	send(2, late, 20, "phone_click")
	if s := e.sessions(t); s[0].IsReturning || s[0].LeadScore != 45 {
		t.Fatalf("before the earlier session: %+v", s[0])
	}
	send(1, early, 10, "pageview")
	got := e.sessions(t)
	if got[0].IsReturning || !got[1].IsReturning || got[1].LeadScore != 50 {
		t.Fatalf("after: first returning=%v, second returning=%v score %d", got[0].IsReturning, got[1].IsReturning, got[1].LeadScore)
	}
}

func TestLandingContextIsFixedButClickIDsFillIn(t *testing.T) {
	e := newEnv(t)
	first := map[string]any{"url": "https://shop.example/a", "referrer": "https://blog.example.org/"}
	r := e.post(t, body(t, map[string]any{"ctx": first, "events": []any{event(1, "pageview", testNow, nil)}}))
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	second := map[string]any{"url": "https://shop.example/b?gclid=X", "referrer": "https://other.example/", "gclid": "X", "utm_source": "google"}
	r = e.post(t, body(t, map[string]any{"ctx": second, "events": []any{event(2, "pageview", testNow, nil)}}))
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	s := e.sessions(t)[0]
	if *s.LandingURL != "https://shop.example/a" || *s.ReferrerHost != "blog.example.org" || s.UTMSource != nil {
		t.Fatalf("landing context overwritten: %+v", s)
	}
	if s.GCLID == nil || *s.GCLID != "X" || s.TrafficSource != SourceGoogleAds {
		t.Fatalf("click id not filled: %+v", s)
	}
}

// delivery is one attempt of a generated batch: the batch's fields, sent
// at a client clock reading (sent_at) that varies from attempt to attempt.
type delivery struct {
	fields map[string]any
	sentAt time.Time
}

func (d delivery) body(t *testing.T, channel string) []byte {
	f := make(map[string]any, len(d.fields)+2)
	for k, v := range d.fields {
		f[k] = v
	}
	f["sent_at"] = d.sentAt.UnixMilli()
	f["channel"] = channel
	return body(t, f)
}

// generatedVisitor is one visitor's clock: most are right, some are hours off.
type generatedVisitor struct {
	id     string
	offset time.Duration // client clock − real time
}

// generateVisits makes the batches of several sessions of a few visitors:
// pageviews, heartbeats (active, idle, hidden) with growing cumulative
// values, conversions, custom events, strings with NUL characters,
// heartbeat-only batches, and tabs of one visitor that overlap in time.
// Some visitors' clocks are hours off. Each batch is returned once per
// session, in the order the tracker would send it; attempts vary sent_at.
func generateVisits(t *testing.T, rng *rand.Rand, sessions int) [][]map[string]any {
	visitors := []generatedVisitor{{vid(1), 0}, {vid(2), 0}, {vid(3), -2 * time.Hour}, {vid(4), 90 * time.Minute}}
	out := make([][]map[string]any, sessions)
	next := 1
	for s := range sessions {
		who := visitors[s%len(visitors)]
		// Sessions of one visitor start a few minutes apart, so that its
		// tabs overlap; visitors are interleaved over the last hours.
		start := testNow.Add(-time.Duration(sessions-s)*7*time.Minute - time.Duration(rng.IntN(300))*time.Second)
		ctx := map[string]any{"url": "https://shop.example/landing", "lang": "en-GB", "tz": "Europe/London", "sw": 1280, "sh": 800}
		switch s % 4 {
		case 0:
			ctx["gclid"], ctx["utm_source"], ctx["utm_medium"] = fmt.Sprintf("gclid-%d", s), "google", "cpc"
		case 1:
			ctx["referrer"] = "https://www.google.com/"
		case 2:
			ctx["referrer"] = "https://l.facebook.com/\u0000"
		}
		at, active, scroll := start, 0, 0
		for range 2 + rng.IntN(4) {
			var evs []any
			heartbeatsOnly := rng.IntN(4) == 0
			for range 1 + rng.IntN(5) {
				at = at.Add(time.Duration(1+rng.IntN(90)) * time.Second)
				ts := at.Add(who.offset)
				k := rng.IntN(10)
				if heartbeatsOnly {
					k = 3 + rng.IntN(3)
				}
				var ev map[string]any
				switch {
				case k < 3:
					ev = event(next, "pageview", ts, map[string]any{"title": fmt.Sprintf("Page\u0000 %d", next)})
				case k < 6:
					active += rng.IntN(60000)
					scroll = min(100, scroll+rng.IntN(40))
					state := []string{"active", "idle", "hidden"}[rng.IntN(3)]
					ev = event(next, "heartbeat", ts, map[string]any{"active_ms": active, "scroll": scroll, "state": state})
				case k == 6:
					ev = event(next, "phone_click", ts, map[string]any{"target": "+90555\u00001112233"})
				case k == 7:
					ev = event(next, "whatsapp_click", ts, map[string]any{"target": "https://wa.me/905551112233"})
				case k == 8:
					ev = event(next, "form_submit", ts, map[string]any{"form": "contact"})
				default:
					ev = event(next, "custom", ts, map[string]any{"name": "quote\u0000", "props": map[string]any{"plan\u0000": "pro\u0000", "n": next}})
				}
				next++
				evs = append(evs, ev)
			}
			out[s] = append(out[s], map[string]any{"sid": sid(s + 1), "vid": who.id, "ctx": ctx, "events": evs, "offset": who.offset})
		}
	}
	return out
}

// attempt is one delivery of a batch: sent "now" by the client's clock,
// a few seconds of latency earlier than the server's now.
func attempt(rng *rand.Rand, fields map[string]any) delivery {
	f := make(map[string]any, len(fields))
	for k, v := range fields {
		if k != "offset" {
			f[k] = v
		}
	}
	latency := time.Duration(rng.IntN(8000)) * time.Millisecond
	return delivery{fields: f, sentAt: testNow.Add(fields["offset"].(time.Duration)).Add(-latency)}
}

func withChannel(t *testing.T, b []byte, channel string) []byte {
	return replaceJSON(t, b, "channel", channel)
}

func replaceJSON(t *testing.T, b []byte, key string, value any) []byte {
	t.Helper()
	var m map[string]any
	if err := jsonUnmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = value
	out, err := jsonMarshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIdempotentDelivery is the protocol's idempotency as a property:
// delivering generated batches once, in order, leaves the same rows as
// delivering them with repeats, shuffled, concurrently, with another
// latency on every attempt, some through the failover channel. Every column
// but the receive and update times must be equal, the returning flags must
// be what they are defined to be, and no string may keep a NUL.
func TestIdempotentDelivery(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			visits := generateVisits(t, rng, 8)

			once := newEnv(t)
			for _, v := range visits {
				for _, b := range v {
					if r := once.post(t, attempt(rng, b).body(t, "primary")); r.status != 200 {
						t.Fatalf("%d %s", r.status, r.raw)
					}
				}
			}

			var all [][]byte
			for _, v := range visits {
				for _, b := range v {
					for range 1 + rng.IntN(3) {
						channel := "primary"
						if rng.IntN(3) == 0 {
							channel = "failover"
						}
						all = append(all, attempt(rng, b).body(t, channel))
					}
				}
			}
			rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			many := newEnv(t)
			var wg sync.WaitGroup
			work := make(chan []byte)
			errs := make(chan string, len(all))
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for b := range work {
						if r := many.post(t, b); r.status != 200 {
							errs <- r.raw
						}
					}
				}()
			}
			for _, b := range all {
				work <- b
			}
			close(work)
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatalf("delivery failed: %s", e)
			}

			s1, s2 := once.sessions(t), many.sessions(t)
			if len(s1) != 8 {
				t.Fatalf("%d sessions", len(s1))
			}
			for i := range s1 {
				if !reflect.DeepEqual(s1[i], s2[i]) {
					t.Fatalf("session %d differs:\nonce: %+v\nmany: %+v", i, s1[i], s2[i])
				}
			}
			e1, e2 := once.events(t), many.events(t)
			if !reflect.DeepEqual(e1, e2) {
				t.Fatalf("events differ: %d rows once, %d rows with repeats", len(e1), len(e2))
			}
			checkSessionInvariants(t, s1)
			for _, e := range e1 {
				if strings.ContainsRune(e.Data, 0) || strings.Contains(e.Data, `\u0000`) {
					t.Fatalf("event %s kept a NUL: %s", e.ID, e.Data)
				}
			}
		})
	}
}

// checkSessionInvariants checks what the rows must be, not only that they
// agree: returning exactly when the visitor has an earlier session, times in
// order, skewed clocks corrected by whole minutes.
func checkSessionInvariants(t *testing.T, rows []sessionRow) {
	t.Helper()
	first := map[string]time.Time{}
	for _, s := range rows {
		if f, ok := first[s.VisitorID]; !ok || s.StartedAt.Before(f) {
			first[s.VisitorID] = s.StartedAt
		}
	}
	for _, s := range rows {
		if want := s.StartedAt.After(first[s.VisitorID]); s.IsReturning != want {
			t.Fatalf("session %s: returning %v, want %v (visitor's first session started %s, this one %s)",
				s.ID, s.IsReturning, want, first[s.VisitorID], s.StartedAt)
		}
		if s.LastActiveAt.Before(s.StartedAt) || s.LastSeenAt.Before(s.LastActiveAt) {
			t.Fatalf("session %s: started %s, last active %s, last seen %s", s.ID, s.StartedAt, s.LastActiveAt, s.LastSeenAt)
		}
		if s.ClockSkewMS%60000 != 0 {
			t.Fatalf("session %s: clock skew %d ms is not whole minutes", s.ID, s.ClockSkewMS)
		}
		if s.Referrer != nil && strings.ContainsRune(*s.Referrer, 0) {
			t.Fatalf("session %s kept a NUL in its referrer", s.ID)
		}
	}
}
