package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/sites"
)

// publishRecorder is the publisher of these tests: it records what the
// handler hands over after commit.
type publishRecorder struct {
	mu  sync.Mutex
	ids []string
}

func (p *publishRecorder) Publish(_ context.Context, ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, ids...)
}

func (e *testEnv) configureAds(t *testing.T, ga4 bool) {
	t.Helper()
	q := `UPDATE sites SET google_ads_customer_id = '1234567890', google_ads_conversion_action = 'Qualified lead'`
	if ga4 {
		q += `, ga4_measurement_id = 'G-TEST1234', ga4_api_secret = 'secret'`
	}
	if _, err := e.pool.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

type conversionRow struct {
	SessionID, Destination, ClickIDType, ClickID, Currency, Status string
	Value                                                          float64
}

func (e *testEnv) conversions(t *testing.T) []conversionRow {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `
		SELECT session_id::text, destination, click_id_type, click_id, currency, status, value::float8
		FROM conversions ORDER BY click_id, destination`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []conversionRow
	for rows.Next() {
		var c conversionRow
		if err := rows.Scan(&c.SessionID, &c.Destination, &c.ClickIDType, &c.ClickID, &c.Currency, &c.Status, &c.Value); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// qualifying is a batch whose phone click and form bring the score to 95.
func qualifying(t *testing.T, s, first int, ctx map[string]any) []byte {
	return body(t, map[string]any{"sid": sid(s), "ctx": ctx, "events": []any{
		event(first, "pageview", testNow.Add(-time.Minute), nil),
		event(first+1, "phone_click", testNow.Add(-50*time.Second), map[string]any{"target": "+905551112233"}),
		event(first+2, "form_submit", testNow.Add(-40*time.Second), map[string]any{"form": "contact"}),
	}})
}

func TestQualifiedLeadWithAClickIDGoesToTheOutboxOnce(t *testing.T) {
	for _, kind := range []string{"gclid", "wbraid", "gbraid"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			pub := &publishRecorder{}
			e.handler.publisher = pub
			e.configureAds(t, false)
			ctx := map[string]any{"url": "https://shop.example/?" + kind + "=CLICK", kind: "CLICK-" + kind}
			for range 3 { // replays
				if r := e.post(t, qualifying(t, 1, 1, ctx)); r.status != 200 {
					t.Fatal(r.raw)
				}
			}
			// A second session of the same click (a new tab) converts too, but
			// not again.
			if r := e.post(t, qualifying(t, 2, 10, ctx)); r.status != 200 {
				t.Fatal(r.raw)
			}
			got := e.conversions(t)
			want := []conversionRow{{SessionID: sid(1), Destination: "google_ads", ClickIDType: kind, ClickID: "CLICK-" + kind, Currency: "USD", Status: "pending", Value: 95}}
			if !slices.Equal(got, want) {
				t.Fatalf("conversions %+v, want %+v", got, want)
			}
			if len(pub.ids) != 1 {
				t.Fatalf("published %v, want the one new row", pub.ids)
			}
		})
	}
}

func TestNoConversionWithoutAQualifiedBrowserSessionWithAClickOnAConfiguredSite(t *testing.T) {
	click := map[string]any{"url": "https://shop.example/", "gclid": "G1"}
	cases := []struct {
		name      string
		configure bool
		ctx       map[string]any
		events    []any
		ua        string
	}{
		{"no click id", true, map[string]any{"url": "https://shop.example/"}, nil, ""},
		{"a bot", true, click, nil, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"site without Ads settings", false, click, nil, ""},
		// 45 (phone) + 10 + 10 + 10 + 5 = 80: at the threshold, not above it.
		{"score at the threshold", true, click, []any{
			event(1, "phone_click", testNow.Add(-10*time.Minute), nil),
			event(2, "heartbeat", testNow.Add(-time.Minute), map[string]any{"active_ms": 300000, "scroll": 95, "state": "active"}),
			event(3, "pageview", testNow.Add(-9*time.Minute), nil), event(4, "pageview", testNow.Add(-8*time.Minute), nil),
			event(5, "pageview", testNow.Add(-7*time.Minute), nil), event(6, "pageview", testNow.Add(-6*time.Minute), nil),
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if c.configure {
				e.configureAds(t, true)
			}
			b := qualifying(t, 1, 1, c.ctx)
			if c.events != nil {
				b = body(t, map[string]any{"sid": sid(1), "ctx": c.ctx, "events": c.events})
			}
			h := map[string]string{}
			if c.ua != "" {
				h["User-Agent"] = c.ua
			}
			if r := e.do(t, "POST", b, h); r.status != 200 {
				t.Fatal(r.raw)
			}
			if got := e.conversions(t); len(got) != 0 {
				t.Fatalf("conversions %+v", got)
			}
			if c.events != nil {
				if s := e.sessions(t)[0]; s.LeadScore != 80 {
					t.Fatalf("score %d, want exactly the threshold", s.LeadScore)
				}
			}
		})
	}
}

// TestSettingsThatArriveLaterConvertWithTheNextBatch: the score crossed
// before the site had Google Ads (and GA4) configured; the session's next
// batch once the site cache has seen the settings creates the rows (a
// session that sends no more is the watchtower's sweep's).
func TestSettingsThatArriveLaterConvertWithTheNextBatch(t *testing.T) {
	const ttl = 50 * time.Millisecond
	e := newEnv(t, WithSiteCache(sites.CacheOptions{TTL: ttl}))
	ctx := map[string]any{"url": "https://shop.example/", "gclid": "LATE"}
	if r := e.post(t, qualifying(t, 1, 1, ctx)); r.status != 200 {
		t.Fatal(r.raw)
	}
	if got := e.conversions(t); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
	e.configureAds(t, true)
	time.Sleep(2 * ttl)
	r := e.post(t, body(t, map[string]any{"sid": sid(1), "ctx": ctx, "events": []any{event(9, "heartbeat", testNow, map[string]any{"state": "idle"})}}))
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	got := e.conversions(t)
	if len(got) != 2 || got[0].Destination != "ga4" || got[1].Destination != "google_ads" {
		t.Fatalf("%+v", got)
	}
}

// TestOneConversionPerClickWhateverTheDelivery is the outbox's rule as a
// property: several sessions sharing click ids, their batches replayed,
// shuffled and delivered concurrently, give one row per click and
// destination, exactly as delivering them once in order.
func TestOneConversionPerClickWhateverTheDelivery(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 17))
			var batches [][]byte
			next := 1
			for s := 1; s <= 9; s++ {
				ctx := map[string]any{"url": "https://shop.example/", "gclid": fmt.Sprintf("click-%d", s%4)}
				if s%3 == 0 {
					ctx = map[string]any{"url": "https://shop.example/"} // no click: never converts
				}
				batches = append(batches, qualifying(t, s, next, ctx))
				next += 3
			}
			once, many := newEnv(t), newEnv(t)
			once.configureAds(t, true)
			many.configureAds(t, true)
			for _, b := range batches {
				if r := once.post(t, b); r.status != 200 {
					t.Fatal(r.raw)
				}
			}
			var all [][]byte
			for _, b := range batches {
				for range 1 + rng.IntN(3) {
					all = append(all, b)
				}
			}
			rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := i; j < len(all); j += 4 {
						if r := many.post(t, all[j]); r.status != 200 {
							t.Errorf("%d %s", r.status, r.raw)
						}
					}
				}()
			}
			wg.Wait()
			key := func(rows []conversionRow) []string {
				var k []string
				for _, c := range rows {
					k = append(k, c.ClickID+"/"+c.Destination)
				}
				return k
			}
			a, b := key(once.conversions(t)), key(many.conversions(t))
			// click-1 … click-3 and click-0 (s = 4, 8): 4 clicks × 2 destinations.
			if len(a) != 8 || !slices.Equal(a, b) {
				t.Fatalf("once %v, many %v", a, b)
			}
		})
	}
}
