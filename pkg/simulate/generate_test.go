package simulate

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/mileusna/useragent"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func newTestGenerator(t *testing.T, seed uint64) *Generator {
	t.Helper()
	g, err := NewGenerator(Options{Origin: "http://127.0.0.1:8080", Seed: seed, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// strictPayload is the protocol's body as the server reads it, decoded with
// unknown fields disallowed, so a misspelt field fails the test.
type strictPayload struct {
	V        *int                       `json:"v"`
	Site     string                     `json:"site"`
	SID      string                     `json:"sid"`
	VID      *string                    `json:"vid"`
	SentAt   *int64                     `json:"sent_at"`
	Failures *int                       `json:"failures"`
	Channel  string                     `json:"channel"`
	Ctx      map[string]json.RawMessage `json:"ctx"`
	Events   []strictEvent              `json:"events"`
}

type strictEvent struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	TS       *int64         `json:"ts"`
	URL      string         `json:"url"`
	Title    string         `json:"title"`
	ActiveMS *int64         `json:"active_ms"`
	Scroll   *int           `json:"scroll"`
	State    string         `json:"state"`
	Target   string         `json:"target"`
	Form     string         `json:"form"`
	Name     string         `json:"name"`
	Props    map[string]any `json:"props"`
}

func decodeStrict(t *testing.T, body []byte) strictPayload {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var p strictPayload
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if dec.More() {
		t.Fatalf("trailing data after the payload: %s", body)
	}
	return p
}

func checkUUID(t *testing.T, what, s string) {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u.Variant() != uuid.RFC4122 || u.Version() != 4 {
		t.Fatalf("%s %q is not a canonical version 4 UUID (%v)", what, s, err)
	}
}

var ctxKeys = []string{"url", "referrer", "gclid", "wbraid", "gbraid", "utm_source", "utm_medium",
	"utm_campaign", "utm_term", "utm_content", "lang", "tz", "sw", "sh"}

func TestGeneratedBatchesFollowTheProtocol(t *testing.T) {
	g := newTestGenerator(t, 42)
	nowMS := testNow.UnixMilli()
	ids := map[string]bool{}
	for i := 0; i < 1500; i++ {
		v := g.Visit()
		checkUUID(t, "sid", v.SessionID)
		if v.VisitorID != "" {
			checkUUID(t, "vid", v.VisitorID)
		}
		if len(v.Batches) == 0 {
			t.Fatalf("visit %d has no batches", i)
		}
		var (
			firstCtx     map[string]json.RawMessage
			lastTS       int64
			lastActive   int64 = -1
			counts             = map[string]int{}
			events       int
			maxScroll    int
			lastActiveMS int64
		)
		start := firstTS(t, v)
		for bi, b := range v.Batches {
			if len(b.Body) > 64<<10 || !utf8.Valid(b.Body) {
				t.Fatalf("batch of %d bytes, valid UTF-8 %v", len(b.Body), utf8.Valid(b.Body))
			}
			if b.UserAgent != v.UserAgent || b.Origin != "http://127.0.0.1:8080" {
				t.Fatalf("batch headers %q %q differ from the visit's", b.UserAgent, b.Origin)
			}
			p := decodeStrict(t, b.Body)
			if p.V == nil || *p.V != 1 || p.Site != "demo" || p.Channel != "primary" ||
				p.Failures == nil || *p.Failures != 0 || p.SentAt == nil || *p.SentAt > nowMS || *p.SentAt < nowMS-1000 {
				t.Fatalf("envelope: %s", b.Body)
			}
			if p.SID != v.SessionID {
				t.Fatalf("sid %s, want the visit's %s", p.SID, v.SessionID)
			}
			if v.VisitorID == "" && p.VID != nil || v.VisitorID != "" && (p.VID == nil || *p.VID != v.VisitorID) {
				t.Fatalf("vid %v, want %q", p.VID, v.VisitorID)
			}
			for _, k := range ctxKeys {
				if _, ok := p.Ctx[k]; !ok {
					t.Fatalf("ctx lacks %q: %s", k, b.Body)
				}
			}
			if len(p.Ctx) != len(ctxKeys) {
				t.Fatalf("ctx has %d keys, want %d", len(p.Ctx), len(ctxKeys))
			}
			if firstCtx == nil {
				firstCtx = p.Ctx
			} else if !reflect.DeepEqual(firstCtx, p.Ctx) {
				t.Fatalf("ctx changed within a session")
			}
			if n := len(p.Events); n < 1 || n > MaxBatchEvents || n != b.Events {
				t.Fatalf("batch has %d events (Batch.Events %d), want 1..%d", n, b.Events, MaxBatchEvents)
			}
			for ei, e := range p.Events {
				checkUUID(t, "event id", e.ID)
				if ids[e.ID] {
					t.Fatalf("event id %s repeated", e.ID)
				}
				ids[e.ID] = true
				if e.TS == nil || *e.TS > nowMS || *e.TS > *p.SentAt || *e.TS < nowMS-10*time.Minute.Milliseconds() {
					t.Fatalf("event ts %v outside the last ten minutes before %d", e.TS, nowMS)
				}
				if *e.TS < lastTS {
					t.Fatalf("event ts %d before the previous %d", *e.TS, lastTS)
				}
				lastTS = *e.TS
				if !strings.HasPrefix(e.URL, "http://127.0.0.1:8080/") {
					t.Fatalf("event url %q is not on the site", e.URL)
				}
				counts[e.Type]++
				events++
				switch e.Type {
				case "pageview":
					if e.Title == "" {
						t.Fatalf("pageview without title")
					}
				case "heartbeat":
					if e.ActiveMS == nil || e.Scroll == nil || *e.Scroll < 0 || *e.Scroll > 100 {
						t.Fatalf("heartbeat without active_ms or with scroll %v", e.Scroll)
					}
					if *e.ActiveMS < lastActive {
						t.Fatalf("active_ms fell from %d to %d within a session", lastActive, *e.ActiveMS)
					}
					if *e.ActiveMS > *e.TS-start {
						t.Fatalf("active_ms %d exceeds the time since the session started %d", *e.ActiveMS, *e.TS-start)
					}
					lastActive, lastActiveMS = *e.ActiveMS, *e.ActiveMS
					maxScroll = max(maxScroll, *e.Scroll)
					if e.State != "active" && e.State != "idle" && e.State != "hidden" {
						t.Fatalf("heartbeat state %q", e.State)
					}
				case "phone_click":
					if !strings.HasPrefix(e.Target, "+") {
						t.Fatalf("phone_click target %q", e.Target)
					}
				case "whatsapp_click":
					if !strings.HasPrefix(e.Target, "https://wa.me/") {
						t.Fatalf("whatsapp_click target %q", e.Target)
					}
				case "form_submit":
					if e.Form == "" {
						t.Fatalf("form_submit without form")
					}
				case "custom":
					if len(e.Name) < 1 || len(e.Name) > 64 || len(e.Props) > 20 {
						t.Fatalf("custom %q with %d props", e.Name, len(e.Props))
					}
					for k, pv := range e.Props {
						switch pv.(type) {
						case string, json.Number, bool:
						default:
							t.Fatalf("custom prop %q has a %T value", k, pv)
						}
					}
				default:
					t.Fatalf("unknown event type %q", e.Type)
				}
				// A tab flushes right after a conversion.
				if isConversion(e.Type) && ei != len(p.Events)-1 {
					t.Fatalf("batch %d goes on after a %s", bi, e.Type)
				}
			}
		}
		checkLanding(t, v, firstCtx)
		want := map[string]int{"pageview": v.Pageviews, "heartbeat": v.Heartbeats, "phone_click": v.PhoneClicks,
			"whatsapp_click": v.WhatsAppClicks, "form_submit": v.FormSubmits, "custom": v.Customs}
		for typ, n := range want {
			if counts[typ] != n {
				t.Fatalf("visit counts %d %s, its events have %d", n, typ, counts[typ])
			}
		}
		if v.Events != events || v.EngagedMS != lastActiveMS || v.MaxScroll != maxScroll || v.Pageviews < 1 {
			t.Fatalf("visit aggregates %d events, %d ms, %d%%; events give %d, %d, %d",
				v.Events, v.EngagedMS, v.MaxScroll, events, lastActiveMS, maxScroll)
		}
	}
}

func firstTS(t *testing.T, v Visit) int64 {
	t.Helper()
	var p Payload
	if err := json.Unmarshal(v.Batches[0].Body, &p); err != nil {
		t.Fatal(err)
	}
	return p.Events[0].TS
}

// checkLanding checks that the landing context agrees with the visit's source.
func checkLanding(t *testing.T, v Visit, c map[string]json.RawMessage) {
	t.Helper()
	str := func(k string) string {
		var s *string
		if err := json.Unmarshal(c[k], &s); err != nil {
			t.Fatalf("ctx %s: %v", k, err)
		}
		if s == nil {
			return ""
		}
		return *s
	}
	landing, err := url.Parse(str("url"))
	if err != nil || landing.Scheme+"://"+landing.Host != "http://127.0.0.1:8080" {
		t.Fatalf("landing url %q", str("url"))
	}
	q := landing.Query()
	for _, k := range []string{"gclid", "wbraid", "gbraid", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"} {
		if q.Get(k) != str(k) {
			t.Fatalf("ctx %s %q, landing URL has %q", k, str(k), q.Get(k))
		}
	}
	if str("lang") == "" || str("tz") == "" || string(c["sw"]) == "0" || string(c["sh"]) == "0" {
		t.Fatalf("ctx lacks lang, tz or screen: %v", c)
	}
	clickID := str("gclid") != "" || str("wbraid") != "" || str("gbraid") != ""
	switch v.Source {
	case SourceGoogleAds:
		if !clickID || str("utm_source") != "google" || str("utm_medium") != "cpc" {
			t.Fatalf("ad visit without click id or cpc utm: %v", c)
		}
	case SourceOrganic:
		if clickID || str("referrer") == "" || str("utm_medium") != "" {
			t.Fatalf("organic visit: %v", c)
		}
	case SourceSocial, SourceReferral:
		if clickID || str("referrer") == "" {
			t.Fatalf("%s visit: %v", v.Source, c)
		}
	case SourceDirect:
		if clickID || str("referrer") != "" || len(q) > 0 {
			t.Fatalf("direct visit: %v", c)
		}
	default:
		t.Fatalf("source %q", v.Source)
	}
}

func TestGeneratedTrafficHasTheRealisticMix(t *testing.T) {
	g := newTestGenerator(t, 7)
	sources, devices := map[string]int{}, map[string]int{}
	var returning, noVID, gclids, phone, wa, form, custom, longEngaged, deepScroll, multiPage int
	sizes := map[int]int{}
	vids := map[string]bool{}
	const n = 2000
	for i := 0; i < n; i++ {
		v := g.Visit()
		sources[v.Source]++
		devices[v.Device]++
		if v.Returning {
			returning++
			if !vids[v.VisitorID] {
				t.Fatalf("returning visit %d reuses vid %q, which no earlier visit had", i, v.VisitorID)
			}
		}
		if v.VisitorID == "" {
			noVID++
		} else {
			vids[v.VisitorID] = true
		}
		if strings.Contains(string(v.Batches[0].Body), `"gclid":"`) {
			gclids++
		}
		phone += min(v.PhoneClicks, 1)
		wa += min(v.WhatsAppClicks, 1)
		form += min(v.FormSubmits, 1)
		custom += min(v.Customs, 1)
		if v.EngagedMS >= 300_000 {
			longEngaged++
		}
		if v.MaxScroll >= 90 {
			deepScroll++
		}
		if v.Pageviews >= 4 {
			multiPage++
		}
		for _, b := range v.Batches {
			sizes[b.Events]++
		}
	}
	for _, s := range []string{SourceGoogleAds, SourceOrganic, SourceSocial, SourceReferral, SourceDirect} {
		if sources[s] < n/20 {
			t.Errorf("only %d of %d visits from %s", sources[s], n, s)
		}
	}
	for _, d := range []string{DeviceMobile, DeviceDesktop, DeviceTablet} {
		if devices[d] < n/50 {
			t.Errorf("only %d of %d visits on %s", devices[d], n, d)
		}
	}
	checks := []struct {
		what     string
		got, min int
	}{
		{"returning visits", returning, n / 10},
		{"visits without a vid", noVID, 1},
		{"ad visits with a gclid", gclids, sources[SourceGoogleAds] * 3 / 4},
		{"visits with a phone click", phone, n / 50},
		{"visits with a WhatsApp click", wa, n / 50},
		{"visits with a form submit", form, n / 100},
		{"visits with a custom event", custom, n / 20},
		{"visits engaged 5 min or more", longEngaged, 1},
		{"visits scrolled 90 % or more", deepScroll, n / 50},
		{"visits with 4 pageviews or more", multiPage, n / 50},
		{"batches of 1 event", sizes[1], 1},
		{"batches of 10 events", sizes[MaxBatchEvents], 1},
	}
	for _, c := range checks {
		if c.got < c.min {
			t.Errorf("%s: %d, want at least %d", c.what, c.got, c.min)
		}
	}
	for size := range sizes {
		if size < 1 || size > MaxBatchEvents {
			t.Errorf("a batch of %d events", size)
		}
	}
}

// The server flags non-browser User-Agents as bots and derives the device type
// from the User-Agent with this parser; every generated visit must look like
// the browser it claims to be.
func TestUserAgentsAreBrowsersOfTheVisitsDevice(t *testing.T) {
	g := newTestGenerator(t, 3)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		v := g.Visit()
		if seen[v.UserAgent] {
			continue
		}
		seen[v.UserAgent] = true
		ua := useragent.Parse(v.UserAgent)
		var device string
		switch {
		case ua.Tablet:
			device = DeviceTablet
		case ua.Mobile:
			device = DeviceMobile
		case ua.Desktop:
			device = DeviceDesktop
		}
		if ua.Bot || ua.Name == "" || device != v.Device {
			t.Errorf("User-Agent %q parses as %+v, want a %s browser", v.UserAgent, ua, v.Device)
		}
	}
	if want := len(DesktopUserAgents) + len(MobileUserAgents) + len(TabletUserAgents); len(seen) != want {
		t.Errorf("saw %d distinct User-Agents, want all %d", len(seen), want)
	}
}

func TestReturningVisitorKeepsItsBrowser(t *testing.T) {
	g := newTestGenerator(t, 11)
	type browser struct {
		ua, device string
		ctx        [4]string
	}
	first := map[string]browser{}
	checked := 0
	for i := 0; i < 1000; i++ {
		v := g.Visit()
		var p Payload
		if err := json.Unmarshal(v.Batches[0].Body, &p); err != nil {
			t.Fatal(err)
		}
		b := browser{v.UserAgent, v.Device, [4]string{p.Ctx.Lang, p.Ctx.TZ, itoa(p.Ctx.SW), itoa(p.Ctx.SH)}}
		if !v.Returning {
			if v.VisitorID != "" {
				first[v.VisitorID] = b
			}
			continue
		}
		checked++
		if first[v.VisitorID] != b {
			t.Fatalf("returning visitor %s came back as %+v, first seen as %+v", v.VisitorID, b, first[v.VisitorID])
		}
	}
	if checked == 0 {
		t.Fatal("no returning visits")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestGeneratorIsDeterministicForASeed(t *testing.T) {
	a, b, c := newTestGenerator(t, 99), newTestGenerator(t, 99), newTestGenerator(t, 100)
	for i := 0; i < 50; i++ {
		va, vb, vc := a.Visit(), b.Visit(), c.Visit()
		if !reflect.DeepEqual(va, vb) {
			t.Fatalf("visit %d differs between two generators with seed 99", i)
		}
		if va.SessionID == vc.SessionID {
			t.Fatalf("visit %d: seeds 99 and 100 gave the same session", i)
		}
	}
}

func TestVisitEventsAreInTheRecentPastOfTheClock(t *testing.T) {
	now := testNow
	g, err := NewGenerator(Options{Origin: "https://shop.example", Seed: 5, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		now = now.Add(17 * time.Second) // the clock moves between visits
		v := g.Visit()
		for _, b := range v.Batches {
			var p Payload
			if err := json.Unmarshal(b.Body, &p); err != nil {
				t.Fatal(err)
			}
			if p.SentAt != now.UnixMilli() {
				t.Fatalf("sent_at %d, want the clock %d", p.SentAt, now.UnixMilli())
			}
			for _, e := range p.Events {
				if age := now.UnixMilli() - e.TS; age < 0 || age > 10*time.Minute.Milliseconds() {
					t.Fatalf("event %s is %d ms old", e.Type, age)
				}
			}
		}
	}
}

func TestBatchHeaderIsABrowsersFetch(t *testing.T) {
	b := Batch{UserAgent: "Mozilla/5.0 X", Origin: "http://localhost:8080", Language: "tr-TR,tr;q=0.9"}
	h := b.Header()
	want := map[string]string{
		"Content-Type":    "text/plain;charset=UTF-8",
		"Origin":          "http://localhost:8080",
		"User-Agent":      "Mozilla/5.0 X",
		"Accept-Language": "tr-TR,tr;q=0.9",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
}

func TestOrigins(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"http://localhost:8080", "http://localhost:8080", true},
		{"https://shop.example/", "https://shop.example", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"", "", false},
		{"localhost:8080", "", false},
		{"ftp://shop.example", "", false},
		{"https://shop.example/path", "", false},
		{"https://shop.example/?q=1", "", false},
		{"https://user@shop.example", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeOrigin(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}

	endpoints := []struct {
		in, want string
		ok       bool
	}{
		{"http://127.0.0.1:8080/api/sync", "http://127.0.0.1:8080", true},
		{"https://abc.lambda-url.eu-central-1.on.aws/", "https://abc.lambda-url.eu-central-1.on.aws", true},
		{"127.0.0.1:8080/api/sync", "", false},
		{"/api/sync", "", false},
	}
	for _, tt := range endpoints {
		got, err := OriginOf(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("OriginOf(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}

	if _, err := NewGenerator(Options{Origin: "not an origin"}); err == nil {
		t.Error("NewGenerator accepted a bad origin")
	}
}

func BenchmarkVisit(b *testing.B) {
	g, err := NewGenerator(Options{Origin: "http://127.0.0.1:8080", Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		g.Visit()
	}
}
