package ingest

import (
	"bytes"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mileusna/useragent"
)

// Client is what the User-Agent tells about the visitor's device.
type Client struct {
	Bot     bool
	Device  string
	Browser string
	OS      string
}

// Device types.
const (
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceDesktop = "desktop"
	DeviceUnknown = "unknown"
)

// The parser is mileusna/useragent, chosen by measurement on
// testdata/ua/corpus.json (1,475 labelled browsers, 1,000 bots), as device
// type right for humans / humans called bots / bots recognised / time per
// parse:
//
//	parser alone        mileusna 66.8 % / 0.07 % / 66.8 % / 2.5 µs
//	                    medama-io/go-useragent 66.2 % / 0 % / 21.4 % / 0.6 µs
//	                    ua-parser/uap-go 68.0 % / 0 % / 53.9 % / 790 µs (cache miss)
//	with the rules      mileusna 95.2 % / 0.07 % / 96.6 % / 6 µs
//	below               medama 94.8 % / 0.07 % / 96.5 % / 3.4 µs
//	                    uap-go 94.8 % / 0.07 % / 96.9 % / 1.5 ms (cache miss)
//
// mileusna's own bot list covers the most, and it is the one that meets the
// issue's bar (≥ 95 % / ≤ 0.5 % / ≥ 95 %) with the rules; uap-go's regular
// expressions cost too much on a cache miss. None of them knows most
// Android tablets that send "Mobile" (the corpus's labels come from a
// database of models): the rules below add what the parser does not
// cover, and MeasureUACorpus prints the current figures (make bench).

// ClassifyUserAgent tells the device type and whether a request comes from
// a bot. touchPoints is the tracker's ctx.touch (navigator.maxTouchPoints, 0
// when absent): iPads send the User-Agent of desktop Safari, and only their
// touch screen tells them from a Mac.
// An empty User-Agent is a bot: every browser sends one.
func ClassifyUserAgent(raw string, touchPoints int) Client {
	if strings.TrimSpace(raw) == "" {
		return Client{Bot: true, Device: DeviceUnknown}
	}
	ua := useragent.Parse(raw)
	platform := platformComment(raw)
	if platform.start < 0 {
		// Feature phones and some apps send no comment; their model is
		// somewhere in the string.
		platform.text = raw
	}
	c := Client{Browser: ua.Name, OS: ua.OS, Device: deviceType(raw, platform, ua, touchPoints)}
	c.Bot = ua.Bot || isBot(raw, platform, ua, c.Device)
	return c
}

// platformComment is the first "(…)" of a User-Agent, where browsers put
// the platform and device model ("Linux; Android 14; SM-X710"), and its
// offset in raw.
func platformComment(raw string) comment {
	i := strings.IndexByte(raw, '(')
	if i < 0 {
		return comment{start: -1}
	}
	j := strings.IndexByte(raw[i:], ')')
	if j < 0 {
		j = len(raw) - i
	}
	return comment{text: raw[i+1 : i+j], start: i + 1}
}

type comment struct {
	text  string
	start int // offset of text in the User-Agent, -1 when there is none
}

func (c comment) contains(i int) bool { return c.start >= 0 && i >= c.start && i < c.start+len(c.text) }

func isBot(raw string, platform comment, ua useragent.UserAgent, device string) bool {
	// A phone model may end in "bot" (CUBOT): names are not looked for in
	// an Android device's platform comment.
	model := comment{start: -1}
	if ua.IsAndroid() {
		model = platform
	}
	if hasBotWord(raw, model) || hasEmail(raw) || lonelyCompatible(raw) {
		return true
	}
	// Not shaped like a browser: no "(platform)" comment, no platform the
	// parser knows, no device word ("node", "Chrome", "Site24x7").
	return platform.start < 0 && ua.OS == "" && device == DeviceUnknown &&
		!containsAny(strings.ToLower(raw), "iphone", "ipad", "android", "browser", "midp", "symbian", "nokia", "samsung", "blackberry", "kaios")
}

// botWords are words that browsers never send, matched as whole words (runs
// of letters, any case), never as substrings: a phone model such as
// "CUBOT_X50" has no word "bot".
var botWords = wordSet(
	"bot", "bots", "slurp", "scraper", "headless", "headlesschrome", "phantomjs", "puppeteer",
	"playwright", "selenium", "webdriver", "lighthouse", "pagespeed", "curl", "wget", "okhttp",
	"httpclient", "axios", "undici", "scrapy", "aiohttp", "java", "facebookexternalhit", "uptime",
	"synthetic", "synthetics", "monitor", "monitoring", "scanner", "validator", "checker",
	"inspector", "diagnostics", "preview", "fetcher", "sitemap", "sitemaps", "healthchecker",
	"agent", "subscribers", "nutch", "nikto",
)

// botParts are capitalised parts of a name that make it a bot's (YextBot,
// YottaaMonitor, BingPreview, PWABuilderHttpAgent).
var botParts = wordSet(
	"bot", "crawler", "spider", "monitor", "preview", "checker", "scan", "scanner", "synthetic",
	"synthetics", "inspector", "diagnostics", "agent", "validator", "fetcher",
)

// botPhrases are runs of words that browsers never send, by first word;
// the separator between words is one of " -_" (python-requests,
// Go-http-client).
var botPhrases = map[string][][]string{
	"python": {{"requests"}, {"urllib"}, {"httpx"}},
	"go":     {{"http", "client"}},
	"node":   {{"fetch"}},
	"libwww": {{"perl"}},
	"check":  {{"http"}},
	"feed":   {{"id"}},
	"google": {{"search", "console"}, {"page", "speed"}},
}

// contactTLDs end the domain names that bots give as their contact
// (postrank.com, velen.io).
var contactTLDs = wordSet("com", "net", "org", "io", "ai", "info", "biz", "dev", "app")

func wordSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// hasBotWord walks the words of a User-Agent once: bot words, bot names
// (Googlebot, MJ12bot, YextBot; not in skip), "crawl" and "spider" inside
// any word, Google's fetchers (Google-Ads-Qualify, DuplexWeb-Google: Google's
// apps send "GSA" instead), URLs and domain names.
func hasBotWord(raw string, skip comment) bool {
	var buf [48]byte
	for i := 0; i < len(raw); {
		if !isLetter(raw[i]) {
			i++
			continue
		}
		j := i
		for j < len(raw) && isLetter(raw[j]) {
			j++
		}
		word, lower := raw[i:j], lowerInto(buf[:0], raw[i:j])
		switch {
		case botWords[string(lower)], bytes.Contains(lower, []byte("crawl")), bytes.Contains(lower, []byte("spider")):
			return true
		case !skip.contains(i) && isBotName(raw, i, word):
			return true
		case string(lower) == "google" && (i > 0 && isJoiner(raw[i-1]) || j < len(raw) && isJoiner(raw[j])):
			return true
		case (string(lower) == "http" || string(lower) == "https") && strings.HasPrefix(raw[j:], "://"):
			return true
		case string(lower) == "www" && j < len(raw) && raw[j] == '.':
			return true
		case contactTLDs[string(lower)] && i >= 2 && raw[i-1] == '.' && isNameByte(raw[i-2]):
			return true
		case string(lower) == "at" && i > 0 && raw[i-1] == '(' && j < len(raw) && raw[j] == ')':
			return true // "name(at)example.org"
		case phraseAt(raw, string(lower), j):
			return true
		}
		i = j
	}
	return false
}

// isBotName reports a name ending in "bot" after a lower-case letter or a
// digit (Googlebot, MJ12bot; all upper case, CUBOT, is a brand), or a
// capitalised part of a name that is in botParts (YextBot, BingPreview).
func isBotName(raw string, i int, word string) bool {
	n := len(word)
	if strings.HasSuffix(word, "bot") && (n > 3 && isLowerLetter(word[n-4]) || n == 3 && i > 0 && isDigit(raw[i-1])) {
		return true
	}
	var buf [48]byte
	for k := 1; k < n; k++ {
		if !isUpperLetter(word[k]) || !isLowerLetter(word[k-1]) {
			continue
		}
		e := k + 1
		for e < n && !isUpperLetter(word[e]) {
			e++
		}
		if botParts[string(lowerInto(buf[:0], word[k:e]))] {
			return true
		}
	}
	return false
}

// phraseAt reports whether a phrase of botPhrases starting with the word
// first continues at raw[at].
func phraseAt(raw, first string, at int) bool {
	var buf [48]byte
next:
	for _, rest := range botPhrases[first] {
		i := at
		for _, w := range rest {
			if i >= len(raw) || !isJoiner(raw[i]) && raw[i] != ' ' {
				continue next
			}
			i++
			e := i + len(w)
			if e > len(raw) || string(lowerInto(buf[:0], raw[i:e])) != w || e < len(raw) && isLetter(raw[e]) {
				continue next
			}
			i = e
		}
		return true
	}
	return false
}

// hasEmail finds "name@domain.tld": bots name their operator.
func hasEmail(raw string) bool {
	at := strings.IndexByte(raw, '@')
	if at <= 0 || !isNameByte(raw[at-1]) {
		return false
	}
	host := raw[at+1:]
	end := 0
	for end < len(host) && (isNameByte(host[end]) || host[end] == '.') {
		end++
	}
	dot := strings.LastIndexByte(host[:end], '.')
	return dot > 0 && end-dot > 2
}

// lonelyCompatible is "Mozilla/5.0 (compatible; Name/1.0)": a comment that
// names a program and no platform, which browsers never send.
func lonelyCompatible(raw string) bool {
	const open = "(compatible;"
	k := strings.Index(raw, open)
	if k < 0 {
		return false
	}
	rest := raw[k+len(open):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return false
	}
	inner := strings.TrimSuffix(strings.TrimSpace(rest[:end]), ";")
	return !strings.Contains(inner, ";")
}

// isTabletModel finds model names that mean a tablet even when the browser
// sends "Mobile" (Android tablets in phone mode): the words tablet, kindle
// and words ending in tab or pad (QUICKTAB, Mi Pad4Plus; Coolpad is a phone
// brand), and the model prefixes of the largest tablet lines (Samsung Galaxy
// Tab, Lenovo Tab and Yoga Tab, Huawei's Wi-Fi models "XXX-W09", Amazon
// Fire "KF…", Nexus 7/9/10).
func isTabletModel(platform string) bool {
	var buf [48]byte
	for i := 0; i < len(platform); {
		if !isLetter(platform[i]) {
			i++
			continue
		}
		j := i
		for j < len(platform) && isLetter(platform[j]) {
			j++
		}
		w := string(lowerInto(buf[:0], platform[i:j]))
		if w == "tablet" || w == "kindle" || (strings.HasSuffix(w, "tab") || strings.HasSuffix(w, "pad")) && w != "coolpad" ||
			strings.HasPrefix(w, "kf") && len(w) >= 4 && len(w) <= 6 && (j == len(platform) || !isDigit(platform[j])) {
			return true
		}
		i = j
	}
	for item := range strings.SplitSeq(platform, ";") {
		item = strings.TrimSpace(item)
		switch {
		case hasPrefixDigit(item, "SM-T"), hasPrefixDigit(item, "SM-P"), hasPrefixDigit(item, "SM-X"),
			hasPrefixDigit(item, "GT-P"), hasPrefixDigit(item, "GT-N"), strings.HasPrefix(item, "Lenovo TB"),
			strings.HasPrefix(item, "YT-"), len(item) > 3 && strings.HasPrefix(item, "YT") && isDigit(item[2]) && item[3] == '-',
			item == "Nexus 7", item == "Nexus 9", item == "Nexus 10", strings.HasPrefix(item, "Nexus 7 "),
			strings.HasPrefix(item, "Nexus 9 "), strings.HasPrefix(item, "Nexus 10 "), isHuaweiWiFiTablet(item):
			return true
		}
	}
	return false
}

// isHuaweiWiFiTablet: "AGS-W09", "AGS3-W09", "TGR-W10 Build/…".
func isHuaweiWiFiTablet(item string) bool {
	if len(item) < 3 || !isUpperLetter(item[0]) || !isUpperLetter(item[1]) || !isUpperLetter(item[2]) {
		return false
	}
	rest := item[3:]
	if rest != "" && isDigit(rest[0]) {
		rest = rest[1:]
	}
	return len(rest) >= 4 && rest[:2] == "-W" && isDigit(rest[2]) && isDigit(rest[3]) &&
		(len(rest) == 4 || !isLetter(rest[4]) && !isDigit(rest[4]))
}

func hasPrefixDigit(s, prefix string) bool {
	return len(s) > len(prefix) && strings.HasPrefix(s, prefix) && isDigit(s[len(prefix)])
}

// pcModels are laptop and desktop lines that run Android (Android-x86) and
// send no "Mobile" token, like tablets; Chromebooks and Pixelbooks, whose
// Android apps may say "Mobile", are found by name.
var pcModels = wordSet(
	"latitude", "inspiron", "vostro", "xps", "elitebook", "probook",
	"compaq", "travelmate", "aspire", "swift", "satellite", "thinkpad", "ideapad", "thinkcentre",
	"nuc", "engage",
)

func isPCModel(platform string) bool {
	var buf [48]byte
	for i := 0; i < len(platform); {
		if !isLetter(platform[i]) {
			i++
			continue
		}
		j := i
		for j < len(platform) && isLetter(platform[j]) {
			j++
		}
		if pcModels[string(lowerInto(buf[:0], platform[i:j]))] {
			return true
		}
		i = j
	}
	return false
}

func deviceType(raw string, platform comment, ua useragent.UserAgent, touchPoints int) string {
	switch {
	case ua.OS == useragent.MacOS && touchPoints > 1:
		// iPadOS 13+ sends the User-Agent of desktop Safari; Macs have no
		// touch screen.
		return DeviceTablet
	case containsAny(raw, "Windows Phone", "IEMobile", "Windows CE"):
		// Old Windows phones send "Windows NT" beside "Windows Phone".
		return DeviceMobile
	case ua.Tablet, strings.Contains(raw, "Silk/"), strings.Contains(raw, "Trident/") && strings.Contains(raw, "Touch"):
		// Silk is the browser of Amazon's Fire tablets (with a Mac
		// User-Agent in desktop mode); "Touch" is Internet Explorer on a
		// Windows tablet.
		return DeviceTablet
	case ua.OS == useragent.ChromeOS || strings.Contains(raw, "(PC;") ||
		ua.IsAndroid() && (containsAny(platform.text, "Chromebook", "Pixelbook") || !strings.Contains(raw, "Mobile") && isPCModel(platform.text)):
		return DeviceDesktop
	case ua.IsAndroid() && strings.Contains(raw, "Android"):
		// Android tablets' browsers send no "Mobile" token (Google's own
		// advice for telling them from phones); apps' HTTP clients (Dalvik,
		// WebViews without "Safari/") say nothing either way. Yandex's
		// tablet builds say "/apad".
		if isTabletModel(platform.text) ||
			strings.Contains(raw, "Safari/") && !strings.Contains(raw, "Mobile") || strings.Contains(raw, "/apad") {
			return DeviceTablet
		}
		return DeviceMobile
	case ua.Desktop && strings.Contains(raw, "Windows NT"):
		// Samsung Internet on Windows, which the parser takes for Android.
		return DeviceDesktop
	case ua.Mobile:
		return DeviceMobile
	case ua.Desktop:
		return DeviceDesktop
	}
	return platformDevice(raw)
}

// platformDevice reads the platform from User-Agents the parser does not
// know (feature phones, old desktop browsers, Apple's CFNetwork).
func platformDevice(raw string) string {
	lower := strings.ToLower(raw)
	switch {
	case strings.Contains(lower, "ipad"):
		return DeviceTablet
	case containsAny(lower, "iphone", "bada", "midp", "up.browser", "symbian", "series60", "series 60",
		"blackberry", "kaios", "opera mini", "wap", "mobile"):
		return DeviceMobile
	case containsAny(lower, "x11", "windows", "win9", "win3", "win7", "win8", "win10", "win11", "cygwin",
		"macintosh", "mac os", "darwin", "bsd", "linux", "amigaos", "haiku", "beos", "os/2", "sunos",
		"openvms", "syllable"):
		return DeviceDesktop
	}
	return DeviceUnknown
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// lowerInto appends s in ASCII lower case to buf (no allocation for the
// short words of a User-Agent).
func lowerInto(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUpperLetter(c) {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}

func isLetter(c byte) bool      { return isLowerLetter(c) || isUpperLetter(c) }
func isLowerLetter(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpperLetter(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool       { return '0' <= c && c <= '9' }
func isJoiner(c byte) bool      { return c == '-' || c == '_' }
func isNameByte(c byte) bool    { return isLetter(c) || isDigit(c) || c == '-' || c == '_' }

// uaCacheSize bounds the classifications a sync handler remembers: a site's
// traffic comes from a few hundred distinct browsers at a time, and a
// classification costs microseconds that a lookup saves on every batch.
const uaCacheSize = 2048

// maxCachedUA keeps unusually long User-Agents (a bot's or an attacker's)
// out of the cache; they are classified each time.
const maxCachedUA = 512

type uaKey struct {
	raw   string
	touch int
}

// uaCache is ClassifyUserAgent with a bounded LRU in front.
type uaCache struct{ lru *lru.Cache[uaKey, Client] }

func newUACache() uaCache {
	c, err := lru.New[uaKey, Client](uaCacheSize)
	if err != nil {
		panic(err) // only for a size < 1
	}
	return uaCache{lru: c}
}

// Classify is ClassifyUserAgent(raw, touchPoints), remembered.
func (c uaCache) Classify(raw string, touchPoints int) Client {
	if len(raw) > maxCachedUA {
		return ClassifyUserAgent(raw, touchPoints)
	}
	k := uaKey{raw, touchPoints}
	if cl, ok := c.lru.Get(k); ok {
		return cl
	}
	cl := ClassifyUserAgent(raw, touchPoints)
	c.lru.Add(k, cl)
	return cl
}
