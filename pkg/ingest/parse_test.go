package ingest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// body builds a request body from a base batch with fields replaced or
// removed (a nil value removes the field).
func body(t testing.TB, change map[string]any) []byte {
	t.Helper()
	ms := testNow.UnixMilli()
	b := map[string]any{
		"v": 1, "site": "demo", "sid": "0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a01",
		"vid": "6f1c0000-7a5e-4c1e-9b1a-3f2d6c8e9a01", "sent_at": ms, "failures": 0, "channel": "primary",
		"ctx": map[string]any{"url": "https://shop.example/landing", "referrer": nil, "lang": "tr-TR", "tz": "Europe/Istanbul", "sw": 390, "sh": 844},
		"events": []any{
			map[string]any{"id": "00000000-0000-4000-8000-000000000001", "type": "pageview", "ts": ms, "url": "https://shop.example/", "title": "Home"},
		},
	}
	for k, v := range change {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func event(i int, typ string, ts time.Time, extra map[string]any) map[string]any {
	e := map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "type": typ, "ts": ts.UnixMilli(), "url": "https://shop.example/"}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func manyEvents(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = event(i+1, "pageview", testNow, nil)
	}
	return out
}

func TestParseRefusesTheWholeBatch(t *testing.T) {
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
		detail string
	}{
		{"not JSON", []byte(`{"v":1,`), 400, "invalid_json", ""},
		{"not an object", []byte(`[1,2]`), 400, "invalid_payload", "JSON object"},
		{"invalid UTF-8", []byte("{\"v\":1,\"site\":\"d\xffemo\"}"), 400, "invalid_json", "UTF-8"},
		{"missing v", body(t, map[string]any{"v": nil}), 400, "invalid_payload", "v: required"},
		{"version 2", body(t, map[string]any{"v": 2}), 400, "invalid_payload", "unsupported protocol version"},
		{"v as string", body(t, map[string]any{"v": "1"}), 400, "invalid_payload", "v: must be a number"},
		{"missing site", body(t, map[string]any{"site": nil}), 400, "invalid_payload", "site: required"},
		{"site as number", body(t, map[string]any{"site": 7}), 400, "invalid_payload", "site: must be a string"},
		{"site too long", body(t, map[string]any{"site": strings.Repeat("a", 65)}), 400, "invalid_payload", "site: longer than 64"},
		{"missing sid", body(t, map[string]any{"sid": nil}), 400, "invalid_payload", "sid: required"},
		{"sid not a UUID", body(t, map[string]any{"sid": "session-1"}), 400, "invalid_payload", "sid: must be a UUID"},
		{"sid UUID without dashes", body(t, map[string]any{"sid": "0193f4c27a5e7c1e9b1a3f2d6c8e9a01"}), 400, "invalid_payload", "sid: must be a UUID"},
		{"vid not a UUID", body(t, map[string]any{"vid": "visitor"}), 400, "invalid_payload", "vid: must be a UUID"},
		{"negative failures", body(t, map[string]any{"failures": -1}), 400, "invalid_payload", "failures"},
		{"fractional failures", body(t, map[string]any{"failures": 1.5}), 400, "invalid_payload", "failures"},
		{"unknown channel", body(t, map[string]any{"channel": "backup"}), 400, "invalid_payload", "channel"},
		{"sent_at as string", body(t, map[string]any{"sent_at": "now"}), 400, "invalid_payload", "sent_at: must be a number"},
		{"sent_at zero", body(t, map[string]any{"sent_at": 0}), 400, "invalid_payload", "sent_at"},
		{"missing ctx", body(t, map[string]any{"ctx": nil}), 400, "invalid_payload", "ctx: required"},
		{"ctx as string", body(t, map[string]any{"ctx": "x"}), 400, "invalid_payload", "ctx: must be an object"},
		{"ctx url as number", body(t, map[string]any{"ctx": map[string]any{"url": 5}}), 400, "invalid_payload", "ctx.url: must be a string"},
		{"missing events", body(t, map[string]any{"events": nil}), 400, "invalid_payload", "events: 1 to 100"},
		{"no events", body(t, map[string]any{"events": []any{}}), 400, "invalid_payload", "events: 1 to 100"},
		{"events not an array", body(t, map[string]any{"events": "x"}), 400, "invalid_payload", "events: must be an array"},
		{"101 events", body(t, map[string]any{"events": manyEvents(101)}), 413, "payload_too_large", "at most 100 events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.body, testNow)
			re, ok := err.(*RequestError)
			if !ok {
				t.Fatalf("Parse = %v, want a *RequestError", err)
			}
			if re.Status != c.status || re.Code != c.code || !strings.Contains(re.Detail, c.detail) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", re.Status, re.Code, re.Detail, c.status, c.code, c.detail)
			}
		})
	}
}

func TestParseAcceptsLimitsAtTheirEdge(t *testing.T) {
	b, err := Parse(body(t, map[string]any{"events": manyEvents(100)}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 100 || len(b.Rejected) != 0 {
		t.Fatalf("100 events: stored %d, rejected %d", len(b.Events), len(b.Rejected))
	}
	// Optional fields may be absent or null.
	b, err = Parse(body(t, map[string]any{"vid": nil, "sent_at": nil, "failures": nil, "channel": nil}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if b.VID != nil || b.Channel != "primary" || b.Failures != 0 || b.Skew != 0 {
		t.Fatalf("defaults: %+v", b)
	}
}

func TestParseRejectsEventsOnTheirOwn(t *testing.T) {
	at := testNow.Add(-time.Minute)
	cases := []struct {
		name   string
		event  any
		reason string
	}{
		{"not an object", "pageview", ReasonInvalidEvent},
		{"ts as string", map[string]any{"id": "00000000-0000-4000-8000-000000000009", "type": "pageview", "ts": "yesterday"}, ReasonInvalidEvent},
		{"missing id", map[string]any{"type": "pageview", "ts": at.UnixMilli()}, ReasonInvalidID},
		{"id not a UUID", event(0, "pageview", at, map[string]any{"id": "1"}), ReasonInvalidID},
		{"missing type", event(9, "", at, map[string]any{"type": nil}), ReasonInvalidType},
		{"unknown type", event(9, "purchase", at, nil), ReasonInvalidType},
		{"missing ts", event(9, "pageview", at, map[string]any{"ts": nil}), ReasonInvalidField},
		{"ts just past 10 minutes ahead", event(9, "pageview", testNow.Add(MaxFuture+time.Millisecond), nil), ReasonTSOutOfRange},
		{"ts just past 7 days old", event(9, "pageview", testNow.Add(-MaxAge-time.Millisecond), nil), ReasonTSOutOfRange},
		{"custom without name", event(9, "custom", at, nil), ReasonInvalidField},
		{"custom name of 65 characters", event(9, "custom", at, map[string]any{"name": strings.Repeat("n", 65)}), ReasonInvalidField},
		{"custom with 21 props", event(9, "custom", at, map[string]any{"name": "x", "props": props(21)}), ReasonInvalidField},
		{"custom with a nested prop", event(9, "custom", at, map[string]any{"name": "x", "props": map[string]any{"a": map[string]any{"b": 1}}}), ReasonInvalidField},
		{"custom with a null prop", event(9, "custom", at, map[string]any{"name": "x", "props": map[string]any{"a": nil}}), ReasonInvalidField},
		{"custom with props as array", event(9, "custom", at, map[string]any{"name": "x", "props": []any{1}}), ReasonInvalidField},
		{"heartbeat with negative active_ms", event(9, "heartbeat", at, map[string]any{"active_ms": -1}), ReasonInvalidField},
		{"heartbeat with negative scroll", event(9, "heartbeat", at, map[string]any{"scroll": -5}), ReasonInvalidField},
		{"heartbeat with unknown state", event(9, "heartbeat", at, map[string]any{"state": "asleep"}), ReasonInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			good := event(1, "pageview", at, nil)
			b, err := Parse(body(t, map[string]any{"events": []any{good, c.event}}), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Rejected) != 1 || b.Rejected[0].Index != 1 || b.Rejected[0].Reason != c.reason {
				t.Fatalf("rejected = %+v, want index 1 %s", b.Rejected, c.reason)
			}
			if len(b.Events) != 1 || b.Events[0].ID.String() != "00000000-0000-4000-8000-000000000001" {
				t.Fatalf("the valid event was not kept: %+v", b.Events)
			}
		})
	}
}

func props(n int) map[string]any {
	p := map[string]any{}
	for i := range n {
		p[fmt.Sprintf("k%d", i)] = i
	}
	return p
}

func TestParseAcceptsEventsAtTheirEdge(t *testing.T) {
	evs := []any{
		event(1, "pageview", testNow.Add(MaxFuture), nil),
		event(2, "pageview", testNow.Add(-MaxAge), nil),
		event(3, "custom", testNow, map[string]any{"name": strings.Repeat("n", 64), "props": props(20)}),
		event(4, "custom", testNow, map[string]any{"name": "ünïcödé-ñame-" + strings.Repeat("é", 51)}),
		event(5, "heartbeat", testNow, map[string]any{"active_ms": 1000, "scroll": 100, "state": "hidden"}),
	}
	b, err := Parse(body(t, map[string]any{"events": evs}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rejected) != 0 || len(b.Events) != 4 || b.Heartbeat.Count != 1 {
		t.Fatalf("rejected %+v, events %d, heartbeats %d", b.Rejected, len(b.Events), b.Heartbeat.Count)
	}
}

func TestParseTruncatesStringsToTheirLimits(t *testing.T) {
	long := "https://shop.example/" + strings.Repeat("é", 3000)
	evs := []any{
		event(1, "pageview", testNow, map[string]any{"url": long, "title": strings.Repeat("t", MaxTitleLen+1)}),
		event(2, "phone_click", testNow, map[string]any{"target": strings.Repeat("9", MaxTargetLen+7)}),
		event(3, "form_submit", testNow, map[string]any{"form": strings.Repeat("f", MaxFormLen+1)}),
		event(4, "custom", testNow, map[string]any{"name": "n", "props": map[string]any{"p": strings.Repeat("v", MaxPropValueLen+1)}}),
	}
	ctx := map[string]any{"url": long, "referrer": long, "utm_source": strings.Repeat("s", MaxUTMLen+1), "gclid": strings.Repeat("g", MaxClickIDLen+1)}
	b, err := Parse(body(t, map[string]any{"events": evs, "ctx": ctx}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	runes := func(s string) int { return len([]rune(s)) }
	if runes(b.Ctx.URL) != MaxURLLen || runes(b.Ctx.Referrer) != MaxURLLen || runes(b.Ctx.UTMSource) != MaxUTMLen || runes(b.Ctx.GCLID) != MaxClickIDLen {
		t.Fatalf("ctx not truncated: %d %d %d %d", runes(b.Ctx.URL), runes(b.Ctx.Referrer), runes(b.Ctx.UTMSource), runes(b.Ctx.GCLID))
	}
	byType := map[string]Event{}
	for _, e := range b.Events {
		byType[e.Type] = e
	}
	if runes(byType["pageview"].URL) != MaxURLLen {
		t.Fatalf("event url has %d characters", runes(byType["pageview"].URL))
	}
	check := func(typ, key string, limit int) {
		var m map[string]any
		if err := json.Unmarshal(byType[typ].Data, &m); err != nil {
			t.Fatal(err)
		}
		v := m[key]
		if typ == "custom" {
			v = m["props"].(map[string]any)["p"]
		}
		if got := runes(v.(string)); got != limit {
			t.Fatalf("%s.%s has %d characters, want %d", typ, key, got, limit)
		}
	}
	check("pageview", "title", MaxTitleLen)
	check("phone_click", "target", MaxTargetLen)
	check("form_submit", "form", MaxFormLen)
	check("custom", "props", MaxPropValueLen)
	// A string exactly at its limit is kept whole.
	exact := "https://shop.example/" + strings.Repeat("a", MaxURLLen-21)
	b, err = Parse(body(t, map[string]any{"ctx": map[string]any{"url": exact}}), testNow)
	if err != nil || b.Ctx.URL != exact {
		t.Fatalf("a %d-character URL was changed: %v", len(exact), err)
	}
}

func TestParseCorrectsSkewedClocks(t *testing.T) {
	// The client's clock is 2 hours behind: its sent_at and ts are both
	// 2 hours early, so without correction every event would look old.
	skew := 2 * time.Hour
	clientNow := testNow.Add(-skew)
	evs := []any{event(1, "pageview", clientNow.Add(-30*time.Second), nil)}
	b, err := Parse(body(t, map[string]any{"sent_at": clientNow.UnixMilli(), "events": evs}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(-30 * time.Second); !b.Events[0].OccurredAt.Equal(want) {
		t.Fatalf("occurred at %v, want %v", b.Events[0].OccurredAt, want)
	}
	// A client 20 minutes ahead would have every event rejected as future
	// without correction.
	ahead := testNow.Add(20 * time.Minute)
	b, err = Parse(body(t, map[string]any{"sent_at": ahead.UnixMilli(), "events": []any{event(1, "pageview", ahead, nil)}}), testNow)
	if err != nil || len(b.Rejected) != 0 || !b.Events[0].OccurredAt.Equal(testNow) {
		t.Fatalf("ahead clock: %v %+v", err, b)
	}
	// Small differences (network time) are not corrections: times stay exact.
	b, err = Parse(body(t, map[string]any{"sent_at": testNow.Add(-5 * time.Second).UnixMilli(), "events": []any{event(1, "pageview", testNow.Add(-6*time.Second), nil)}}), testNow)
	if err != nil || b.Skew != 0 || !b.Events[0].OccurredAt.Equal(testNow.Add(-6*time.Second)) {
		t.Fatalf("small skew corrected: %v %+v", err, b)
	}
}

func TestParseMergesHeartbeatsAndDeduplicatesWithinABatch(t *testing.T) {
	evs := []any{
		event(1, "heartbeat", testNow.Add(-2*time.Minute), map[string]any{"active_ms": 60000, "scroll": 80}),
		event(2, "heartbeat", testNow.Add(-time.Minute), map[string]any{"active_ms": 90000, "scroll": 40, "state": "idle"}),
		event(3, "pageview", testNow, nil),
		event(3, "pageview", testNow, nil),
		event(4, "heartbeat", testNow, map[string]any{"active_ms": 1e12, "scroll": 250}),
	}
	b, err := Parse(body(t, map[string]any{"events": evs}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	hb := b.Heartbeat
	if hb.Count != 3 || hb.ActiveMS != MaxActiveMS || hb.Scroll != 100 || !hb.LastAt.Equal(testNow) {
		t.Fatalf("heartbeat = %+v", hb)
	}
	if len(b.Events) != 1 || b.Offered() != 2 {
		t.Fatalf("events %d offered %d, want 1 and 2", len(b.Events), b.Offered())
	}
}

func FuzzParse(f *testing.F) {
	f.Add(body(f, nil))
	f.Add(body(f, map[string]any{"events": manyEvents(3)}))
	f.Add([]byte(`{"v":1,"site":"demo","sid":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a01","ctx":{},"events":[{"id":"00000000-0000-4000-8000-000000000001","type":"custom","ts":1,"name":"x","props":{"a":1,"b":"c","d":true}}]}`))
	f.Add([]byte(`{"v":1,"events":[null,1,"x",{"ts":1e309}]}`))
	f.Add([]byte("\xff\xfe"))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data, testNow)
		if utf8.Valid(data) {
			// The one-pass fast decoder and the event-by-event decoder agree
			// on every body they both accept.
			if slow, slowErr := parseEventByEvent(data, testNow); err == nil && slowErr == nil && !reflect.DeepEqual(b, slow) {
				t.Fatalf("fast and slow paths differ:\n%+v\n%+v", b, slow)
			} else if err == nil && slowErr != nil {
				t.Fatalf("fast path accepted what the slow path refused: %v", slowErr)
			}
		}
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if b.Received < 1 || b.Received > MaxEvents {
			t.Fatalf("accepted a batch of %d events", b.Received)
		}
		if len(b.Events)+len(b.Rejected)+b.Heartbeat.Count > b.Received {
			t.Fatalf("more outcomes than events")
		}
		for _, e := range b.Events {
			if e.OccurredAt.After(testNow.Add(MaxFuture)) || e.OccurredAt.Before(testNow.Add(-MaxAge)) {
				t.Fatalf("event out of range accepted: %v", e.OccurredAt)
			}
			if !json.Valid(e.Data) || len([]rune(e.URL)) > MaxURLLen {
				t.Fatalf("bad event data %q", e.Data)
			}
		}
	})
}

func TestParseCapsReportedFailures(t *testing.T) {
	for _, c := range []struct{ sent, want int }{{0, 0}, {3, 3}, {MaxFailures, MaxFailures}, {MaxFailures + 1, MaxFailures}, {1 << 40, MaxFailures}} {
		b, err := Parse(body(t, map[string]any{"failures": c.sent}), testNow)
		if err != nil || b.Failures != c.want {
			t.Fatalf("failures %d: got %v %v, want %d", c.sent, b, err, c.want)
		}
	}
	for _, c := range []struct{ sent, want int }{{MaxScreen, MaxScreen}, {MaxScreen + 1, MaxScreen}, {-1, 0}} {
		b, err := Parse(body(t, map[string]any{"ctx": map[string]any{"sw": c.sent, "sh": c.sent}}), testNow)
		if err != nil || b.Ctx.ScreenWidth != c.want || b.Ctx.ScreenHeight != c.want {
			t.Fatalf("screen %d: got %+v %v, want %d", c.sent, b.Ctx, err, c.want)
		}
	}
}
