// Package simulate plays realistic visits through the sync endpoint's HTTP API,
// exactly as the tracker would send them (docs/protocol.md, version 1): a Generator
// makes a visitor's batches (bodies and browser headers), and Run sends many
// visitors with bounded concurrency and summarises what the server answered.
//
// A Generator is deterministic for a seed and a clock, so tests and benchmarks
// can reuse its visits.
package simulate

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/opsmantik/opsmantik/pkg/protocol"

	"github.com/opsmantik/opsmantik/pkg/ingest"
)

// ContentType is what the tracker sends, so that browsers make no CORS preflight.
const ContentType = protocol.ContentType

// MaxBatchEvents is the most events the generator puts in one batch (the
// protocol allows 100; a browser tab flushes far fewer at a time).
const MaxBatchEvents = 10

// maxVisit bounds a visit's length, so every event is within the last ten
// minutes when the visit is generated.
const maxVisit = 9 * time.Minute

// Traffic sources and device types a visit is made with: the server's own
// names (DESIGN.md's definitions), so expectations compare with session rows.
const (
	SourceGoogleAds = ingest.SourceGoogleAds
	SourceOrganic   = ingest.SourceOrganicSearch
	SourceSocial    = ingest.SourceSocial
	SourceReferral  = ingest.SourceReferral
	SourceDirect    = ingest.SourceDirect

	DeviceMobile  = ingest.DeviceMobile
	DeviceTablet  = ingest.DeviceTablet
	DeviceDesktop = ingest.DeviceDesktop
)

// Options configures a Generator.
type Options struct {
	// Site is the site's public id (the tracker's data-site); "demo" if empty.
	Site string
	// Origin is the site's scheme://host[:port]: the Origin header of every
	// request and the base of every page URL. It must be one of the site's domains.
	Origin string
	// Seed makes the sequence of visits reproducible.
	Seed uint64
	// Now is the clock event times are taken from; time.Now if nil.
	Now func() time.Time
}

// Generator makes realistic visits. It is safe for concurrent use; for a given
// seed and clock the n-th call to Visit returns the same visit.
type Generator struct {
	site   string
	origin string
	seed   uint64
	now    func() time.Time

	mu      sync.Mutex
	rng     *rand.Rand
	seen    []visitor // earlier visitors with a vid, for returning visits
	nextOld int       // ring position in seen once it is full
}

// maxSeen bounds the visitors remembered for returning visits.
const maxSeen = 512

// NewGenerator returns a generator for o.
func NewGenerator(o Options) (*Generator, error) {
	if o.Site == "" {
		o.Site = "demo"
	}
	origin, err := NormalizeOrigin(o.Origin)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Generator{
		site:   o.Site,
		origin: origin,
		seed:   o.Seed,
		now:    o.Now,
		rng:    rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
	}, nil
}

// NormalizeOrigin checks that origin is an http(s) scheme://host[:port] and
// returns it without a trailing slash.
func NormalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", origin, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("origin %q: want scheme://host[:port]", origin)
	}
	return u.Scheme + "://" + u.Host, nil
}

// OriginOf returns the scheme://host[:port] of an endpoint URL, the default
// origin when the pages and the endpoint share a host (as under opsmantik dev).
func OriginOf(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("url " + strconv.Quote(endpoint) + ": want an http or https URL")
	}
	return u.Scheme + "://" + u.Host, nil
}

// Seed returns the generator's seed.
func (g *Generator) Seed() uint64 { return g.seed }

// Origin returns the origin the generator's requests carry.
func (g *Generator) Origin() string { return g.origin }

// Visit is one visitor's session: the batches a browser tab would send, in
// order, and what the server should make of them.
type Visit struct {
	SessionID string
	VisitorID string // empty when the visitor has no vid (storage blocked)
	UserAgent string

	// Returning is true when VisitorID was used by an earlier visit of this
	// generator; the server sees it as returning if that visit arrived first.
	Returning bool
	Source    string // one of the Source constants
	Device    string // one of the Device constants

	// Aggregates of the events in Batches (heartbeats included in Events).
	Events         int
	Pageviews      int
	Heartbeats     int
	PhoneClicks    int
	WhatsAppClicks int
	FormSubmits    int
	Customs        int
	EngagedMS      int64 // the last (largest) cumulative active_ms
	MaxScroll      int   // deepest scroll on any page

	Batches []Batch
}

// Batch is one request body of a visit with the headers its browser sends.
type Batch struct {
	Body      []byte // the JSON payload
	Events    int    // events in Body
	UserAgent string
	Origin    string
	Language  string // the Accept-Language header
}

// Header returns the request headers a browser's fetch sends with the batch.
func (b Batch) Header() http.Header {
	h := http.Header{}
	h.Set("Content-Type", ContentType)
	h.Set("Origin", b.Origin)
	h.Set("User-Agent", b.UserAgent)
	h.Set("Accept", "*/*")
	if b.Language != "" {
		h.Set("Accept-Language", b.Language)
	}
	return h
}

// The wire types are the protocol's (pkg/protocol).
type (
	Payload = protocol.Batch
	Context = protocol.Context
	Event   = protocol.Event
)

// visitor is what stays the same when a visitor comes back.
type visitor struct {
	vid      string
	device   string
	ua       string
	sw, sh   int
	lang, tz string
}

// page is one page of the demo business the visits browse.
type page struct{ path, title string }

// The tables visits are drawn from: a small Turkish plumbing business, its
// visitors' browsers and where they come from. Read only.
var (
	pages = []page{
		{"/", "Anka Tesisat — 7/24 Acil Tesisatçı"},
		{"/hizmetler/su-kacagi", "Su Kaçağı Tespiti | Anka Tesisat"},
		{"/hizmetler/kombi-bakimi", "Kombi Bakımı | Anka Tesisat"},
		{"/fiyatlar", "Fiyatlar | Anka Tesisat"},
		{"/hakkimizda", "Hakkımızda | Anka Tesisat"},
		{"/blog/musluk-damlatmasi-nasil-onlenir", "Musluk Damlatması Nasıl Önlenir? | Anka Tesisat"},
		{"/iletisim", "İletişim | Anka Tesisat"},
	}
	// DesktopUserAgents, MobileUserAgents and TabletUserAgents are real
	// browsers' User-Agents by device type (pkg/seed draws from them too).
	DesktopUserAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	}
	MobileUserAgents = []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 13; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.179 Mobile Safari/537.36",
	}
	TabletUserAgents = []string{
		"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		// Android tablets: parsers know them by "Tablet", which Firefox sends (Chrome's lack of "Mobile" is not enough).
		"Mozilla/5.0 (Android 13; Tablet; rv:127.0) Gecko/127.0 Firefox/127.0",
	}
	screens = map[string][][2]int{
		DeviceDesktop: {{1920, 1080}, {1536, 864}, {1440, 900}, {1366, 768}, {2560, 1440}},
		DeviceMobile:  {{390, 844}, {393, 852}, {412, 915}, {360, 800}, {375, 667}},
		DeviceTablet:  {{820, 1180}, {768, 1024}, {800, 1280}},
	}
	locales = []struct {
		lang, tz, accept string
		weight           int
	}{
		{"tr-TR", "Europe/Istanbul", "tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7", 70},
		{"en-US", "America/New_York", "en-US,en;q=0.9", 10},
		{"en-GB", "Europe/London", "en-GB,en;q=0.9", 8},
		{"de-DE", "Europe/Berlin", "de-DE,de;q=0.9,en;q=0.8", 8},
		{"ar-SA", "Asia/Riyadh", "ar-SA,ar;q=0.9,en;q=0.8", 4},
	}
	phoneTargets    = []string{"+905551112233", "+902124445566"}
	whatsAppTargets = []string{"https://wa.me/905551112233", "https://wa.me/905551112233?text=Merhaba"}
	forms           = []string{"contact", "quote", "callback"}
	campaigns       = []string{"brand", "generic-plumber", "emergency", "competitor"}
	adTerms         = []string{"acil tesisatçı", "su kaçağı tespiti", "kombi bakımı", "tesisatçı yakınımda"}
	organicSites    = []string{"https://www.google.com/", "https://www.google.com.tr/", "https://www.bing.com/", "https://yandex.com.tr/", "https://duckduckgo.com/"}
	socialSites     = []string{"https://l.facebook.com/", "https://l.instagram.com/", "https://t.co/", "https://www.linkedin.com/", "https://www.youtube.com/"}
	referralSites   = []string{"https://www.sahibinden.com/", "https://www.armut.com/", "https://news.ycombinator.com/", "https://tr.wikipedia.org/"}
)

// Visit generates the next visitor's visit, ending within the last few seconds
// of the generator's clock and lasting at most nine minutes.
func (g *Generator) Visit() Visit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.visit(g.now())
}

func (g *Generator) visit(now time.Time) Visit {
	r := g.rng
	var v Visit
	v.SessionID = g.uuid()

	// Who: a returning visitor (same vid and browser), a new one, or one
	// whose browser keeps no vid.
	var who visitor
	switch {
	case len(g.seen) > 0 && r.IntN(100) < 20:
		who = g.seen[r.IntN(len(g.seen))]
		v.Returning = true
	default:
		who = g.newVisitor()
		if r.IntN(100) < 3 {
			who.vid = ""
		} else {
			g.remember(who)
		}
	}
	v.VisitorID, v.UserAgent, v.Device = who.vid, who.ua, who.device
	accept := acceptLanguage(who.lang)

	// Where from: the landing context.
	v.Source = pickWeighted(r, []string{SourceGoogleAds, SourceOrganic, SourceSocial, SourceReferral, SourceDirect}, []int{30, 25, 15, 10, 20})
	landing := pages[0]
	if v.Source == SourceGoogleAds || r.IntN(3) == 0 {
		landing = pages[r.IntN(3)] // home or a service page
	} else if r.IntN(2) == 0 {
		landing = pages[r.IntN(len(pages))]
	}
	ctx, query := g.landingContext(v.Source, who)
	landingURL := g.origin + landing.path
	if len(query) > 0 {
		landingURL += "?" + query.Encode()
	}
	ctx.URL = landingURL

	events := g.events(&v, landing, landingURL)

	// Anchor the timeline: the last event a few seconds before now.
	end := now.UnixMilli() - int64(r.IntN(20_000))
	last := events[len(events)-1].TS
	for i := range events {
		events[i].TS += end - last
	}

	// Batch as a tab flushes: a few events at a time, and at once after a conversion.
	sentAt := now.UnixMilli()
	for len(events) > 0 {
		n := min(len(events), 1+r.IntN(r.IntN(MaxBatchEvents)+1))
		for i := 0; i < n; i++ {
			if isConversion(events[i].Type) {
				n = i + 1
				break
			}
		}
		p := Payload{
			V: 1, Site: g.site, SID: v.SessionID, VID: v.VisitorID,
			SentAt: sentAt, Failures: 0, Channel: "primary",
			Ctx: ctx, Events: events[:n],
		}
		v.Batches = append(v.Batches, Batch{Body: encode(p), Events: n, UserAgent: who.ua, Origin: g.origin, Language: accept})
		events = events[n:]
	}
	return v
}

// events builds a visit's events, with times relative to its start.
func (g *Generator) events(v *Visit, landing page, landingURL string) []Event {
	r := g.rng
	var events []Event
	add := func(e Event) {
		e.ID = g.uuid()
		events = append(events, e)
		v.Events++
	}

	// Ad visitors convert more; a conversion-minded visitor may click more than once.
	phoneP, waP, formP := 5, 5, 3
	if v.Source == SourceGoogleAds {
		phoneP, waP, formP = 15, 12, 8
	}
	nPages := pickWeighted(r, []int{1, 2, 3, 4, 5, 6}, []int{45, 25, 15, 7, 5, 3})
	wantPhone := r.IntN(100) < phoneP
	wantWA := r.IntN(100) < waP
	wantForm := r.IntN(100) < formP
	wantCustom := r.IntN(100) < 15
	convPage := r.IntN(nPages) // the page where the visitor converts

	var t, activeMS int64 // ms since the visit started; cumulative engaged ms
	budget := maxVisit.Milliseconds()
	cur := landing
	for p := 0; p < nPages; p++ {
		u := landingURL
		if p > 0 {
			t += 500 + int64(r.IntN(2500)) // the next page loads
			if t >= budget {
				break
			}
			next := pages[r.IntN(len(pages)-1)+1]
			if next == cur {
				next = pages[0]
			}
			cur = next
			if p == convPage && wantForm {
				cur = pages[len(pages)-1] // the contact page has the form
			}
			u = g.origin + cur.path
		}
		add(Event{Type: "pageview", TS: t, URL: u, Title: cur.title})
		v.Pageviews++

		// Dwell: many short looks, some long reads.
		dwell := int64(3_000 + r.IntN(40_000))
		if r.IntN(100) < 35 {
			dwell += int64(r.IntN(200_000))
		}
		dwell = min(dwell, budget-t)
		start := t
		deepest := 0
		finalScroll := r.IntN(101)
		if dwell < 10_000 {
			finalScroll = r.IntN(40)
		}

		// Conversions and custom events at moments within the dwell.
		var moments []Event
		if p == convPage {
			if wantPhone {
				for range clicks(r) {
					moments = append(moments, Event{Type: "phone_click", TS: start + 1 + r.Int64N(dwell), URL: u, Target: phoneTargets[r.IntN(len(phoneTargets))]})
					v.PhoneClicks++
				}
			}
			if wantWA {
				for range clicks(r) {
					moments = append(moments, Event{Type: "whatsapp_click", TS: start + 1 + r.Int64N(dwell), URL: u, Target: whatsAppTargets[r.IntN(len(whatsAppTargets))]})
					v.WhatsAppClicks++
				}
			}
			if wantForm {
				moments = append(moments, Event{Type: "form_submit", TS: start + 1 + r.Int64N(dwell), URL: u, Form: forms[r.IntN(len(forms))]})
				v.FormSubmits++
				if r.IntN(10) == 0 { // submitted again
					moments = append(moments, Event{Type: "form_submit", TS: start + 1 + r.Int64N(dwell), URL: u, Form: "contact"})
					v.FormSubmits++
				}
			}
		}
		if wantCustom && (p == 0 || r.IntN(3) == 0) {
			moments = append(moments, g.custom(start+1+r.Int64N(dwell), u))
			v.Customs++
		}

		// Heartbeats every 60 s on the page and one as the page is hidden;
		// active_ms is the session's cumulative engaged time.
		var beats []int64
		for hb := start + 60_000; hb < start+dwell; hb += 60_000 {
			beats = append(beats, hb)
		}
		if r.IntN(100) < 85 { // a beacon on pagehide, most of the time
			beats = append(beats, start+dwell)
		}
		prev := start
		for i, hb := range beats {
			elapsed := hb - prev
			state := "active"
			share := 60 + r.IntN(41)
			if r.IntN(100) < 20 {
				state, share = "idle", 5+r.IntN(30)
			}
			activeMS += elapsed * int64(share) / 100
			deepest = max(deepest, finalScroll*(i+1)/len(beats))
			if hb == start+dwell && i == len(beats)-1 {
				state = "hidden"
				deepest = finalScroll
			}
			am, sc := activeMS, deepest
			moments = append(moments, Event{Type: "heartbeat", TS: hb, URL: u, ActiveMS: &am, Scroll: &sc, State: state})
			v.Heartbeats++
			v.EngagedMS = activeMS
			v.MaxScroll = max(v.MaxScroll, deepest)
			prev = hb
		}
		slices.SortStableFunc(moments, func(a, b Event) int { return cmp.Compare(a.TS, b.TS) })
		for _, e := range moments {
			add(e)
		}
		t = start + dwell
	}
	return events
}

// clicks returns how many times a converting visitor clicks: mostly once.
func clicks(r *rand.Rand) int {
	return pickWeighted(r, []int{1, 2, 3, 4}, []int{80, 12, 5, 3})
}

func (g *Generator) custom(ts int64, u string) Event {
	r := g.rng
	e := Event{Type: "custom", TS: ts, URL: u}
	switch r.IntN(4) {
	case 0:
		e.Name, e.Props = "video_play", map[string]any{"video": "tanitim", "seconds": 5 + r.IntN(120)}
	case 1:
		e.Name, e.Props = "quote_requested", map[string]any{"plan": []string{"basic", "pro"}[r.IntN(2)], "value": 500 + 100*r.IntN(20)}
	case 2:
		e.Name, e.Props = "faq_open", map[string]any{"question": "fiyat", "index": r.IntN(8)}
	default:
		e.Name, e.Props = "cta_click", map[string]any{"position": "hero", "sticky": r.IntN(2) == 0}
	}
	return e
}

// landingContext returns the session's landing context (URL filled by the
// caller) and the query string of the landing URL.
func (g *Generator) landingContext(source string, who visitor) (Context, url.Values) {
	r := g.rng
	c := Context{Lang: who.lang, TZ: who.tz, SW: who.sw, SH: who.sh}
	q := url.Values{}
	set := func(dst **string, key, val string) {
		*dst = &val
		q.Set(key, val)
	}
	switch source {
	case SourceGoogleAds:
		c.Referrer = ptr("https://www.google.com/")
		switch n := r.IntN(100); {
		case n < 85:
			set(&c.GCLID, "gclid", "Cj0KCQjw"+g.token(76)+"_BwE")
		case n < 95 || who.device == DeviceDesktop:
			set(&c.GBRAID, "gbraid", "0AAAAAD"+g.token(28))
		default:
			set(&c.WBRAID, "wbraid", "CjkKCQjw"+g.token(40))
		}
		set(&c.UTMSource, "utm_source", "google")
		set(&c.UTMMedium, "utm_medium", "cpc")
		set(&c.UTMCampaign, "utm_campaign", campaigns[r.IntN(len(campaigns))])
		if r.IntN(2) == 0 {
			set(&c.UTMTerm, "utm_term", adTerms[r.IntN(len(adTerms))])
		}
	case SourceOrganic:
		c.Referrer = ptr(organicSites[r.IntN(len(organicSites))])
		if r.IntN(100) < 70 {
			c.Referrer = ptr("https://www.google.com/")
		}
	case SourceSocial:
		c.Referrer = ptr(socialSites[r.IntN(len(socialSites))])
		if r.IntN(2) == 0 {
			set(&c.UTMSource, "utm_source", []string{"facebook", "instagram"}[r.IntN(2)])
			set(&c.UTMMedium, "utm_medium", "social")
			set(&c.UTMCampaign, "utm_campaign", "spring-promo")
		}
	case SourceReferral:
		c.Referrer = ptr(referralSites[r.IntN(len(referralSites))])
	}
	return c, q
}

func (g *Generator) newVisitor() visitor {
	r := g.rng
	w := visitor{vid: g.uuid()}
	w.device = pickWeighted(r, []string{DeviceMobile, DeviceDesktop, DeviceTablet}, []int{60, 32, 8})
	switch w.device {
	case DeviceMobile:
		w.ua = MobileUserAgents[r.IntN(len(MobileUserAgents))]
	case DeviceTablet:
		w.ua = TabletUserAgents[r.IntN(len(TabletUserAgents))]
	default:
		w.ua = DesktopUserAgents[r.IntN(len(DesktopUserAgents))]
	}
	s := screens[w.device][r.IntN(len(screens[w.device]))]
	w.sw, w.sh = s[0], s[1]
	weights := make([]int, len(locales))
	for i, l := range locales {
		weights[i] = l.weight
	}
	l := locales[pickWeighted(r, indexes(len(locales)), weights)]
	w.lang, w.tz = l.lang, l.tz
	return w
}

func (g *Generator) remember(w visitor) {
	if len(g.seen) < maxSeen {
		g.seen = append(g.seen, w)
		return
	}
	g.seen[g.nextOld] = w
	g.nextOld = (g.nextOld + 1) % maxSeen
}

// uuid returns a version 4 UUID drawn from the generator's seeded source.
func (g *Generator) uuid() string {
	var u uuid.UUID
	for i := 0; i < 16; i += 8 {
		x := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			u[i+j] = byte(x >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// token returns n URL-safe characters, the alphabet of Google click ids.
func (g *Generator) token(n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(tokenChars[g.rng.IntN(len(tokenChars))])
	}
	return b.String()
}

func acceptLanguage(lang string) string {
	for _, l := range locales {
		if l.lang == lang {
			return l.accept
		}
	}
	return lang
}

// encode marshals p as a browser's JSON.stringify does (no HTML escaping).
func encode(p Payload) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		panic("simulate: marshal payload: " + err.Error()) // plain values only: cannot fail
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func isConversion(typ string) bool {
	return typ == "phone_click" || typ == "whatsapp_click" || typ == "form_submit"
}

func pickWeighted[T any](r *rand.Rand, items []T, weights []int) T {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return items[i]
		}
		n -= w
	}
	return items[len(items)-1]
}

func indexes(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func ptr(s string) *string { return &s }
