package ingest

import (
	"net/url"
	"strings"

	"github.com/mileusna/useragent"
)

// Traffic sources (DESIGN.md "Definitions").
const (
	SourceGoogleAds     = "google_ads"
	SourcePaid          = "paid"
	SourceOrganicSearch = "organic_search"
	SourceSocial        = "social"
	SourceReferral      = "referral"
	SourceDirect        = "direct"
)

// Device types.
const (
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceDesktop = "desktop"
	DeviceUnknown = "unknown"
)

// paidMediums are utm_medium values that mean a paid click (besides any
// value starting with "paid").
var paidMediums = map[string]bool{
	"cpc": true, "ppc": true, "cpm": true, "cpv": true, "cpa": true, "cpl": true,
	"display": true, "banner": true, "retargeting": true, "sem": true, "ads": true,
}

// socialMediums are utm_medium values that mean social (unpaid) traffic.
var socialMediums = map[string]bool{
	"social": true, "social-network": true, "social-media": true, "social_media": true,
	"sm": true, "social network": true, "social media": true,
}

// searchEngines are registrable-name labels of search engines: a referrer
// whose host contains one of these labels (google.com, google.com.tr,
// www.bing.com, …) is organic search.
var searchEngines = []string{
	"google", "bing", "yahoo", "duckduckgo", "yandex", "baidu", "ecosia",
	"naver", "seznam", "startpage", "qwant", "search.brave", "ask", "aol",
}

// socialHosts are host suffixes of social networks.
var socialHosts = []string{
	"facebook.com", "fb.com", "fb.me", "instagram.com", "t.co", "twitter.com", "x.com",
	"linkedin.com", "lnkd.in", "pinterest.com", "reddit.com", "tiktok.com",
	"youtube.com", "youtu.be", "vk.com", "threads.net", "snapchat.com",
	"telegram.org", "t.me", "whatsapp.com", "quora.com", "tumblr.com",
}

// socialSources are utm_source values of social networks.
var socialSources = map[string]bool{
	"facebook": true, "fb": true, "instagram": true, "ig": true, "twitter": true, "x": true,
	"linkedin": true, "pinterest": true, "reddit": true, "tiktok": true, "youtube": true,
	"threads": true, "snapchat": true, "telegram": true, "whatsapp": true,
}

// TrafficSource classifies a session's landing context.
func TrafficSource(c Context) string {
	if c.GCLID != "" || c.WBRAID != "" || c.GBRAID != "" {
		return SourceGoogleAds
	}
	medium := strings.ToLower(strings.TrimSpace(c.UTMMedium))
	source := strings.ToLower(strings.TrimSpace(c.UTMSource))
	if paidMediums[medium] || strings.HasPrefix(medium, "paid") {
		return SourcePaid
	}
	if socialMediums[medium] || (medium == "" && socialSources[source]) {
		return SourceSocial
	}
	if medium == "organic" {
		return SourceOrganicSearch
	}
	host := referrerHost(c.Referrer)
	if host != "" && host != urlHost(c.URL) {
		switch {
		case hasHostSuffix(host, socialHosts):
			return SourceSocial
		case isSearchEngine(host):
			return SourceOrganicSearch
		default:
			return SourceReferral
		}
	}
	if medium != "" || source != "" {
		// Tagged links without a referrer (e-mail, QR codes, apps) came from
		// somewhere we know of: a referral, not direct traffic.
		return SourceReferral
	}
	return SourceDirect
}

func hasHostSuffix(host string, suffixes []string) bool {
	for _, s := range suffixes {
		if host == s || strings.HasSuffix(host, "."+s) {
			return true
		}
	}
	return false
}

func isSearchEngine(host string) bool {
	labels := strings.Split(host, ".")
	for _, e := range searchEngines {
		if strings.Contains(e, ".") {
			if strings.Contains(host, e) {
				return true
			}
			continue
		}
		// The engine's name is a label of the host other than the last
		// (google.com, www.google.com.tr), so "mygoogle.com" is not one.
		for _, l := range labels[:max(len(labels)-1, 0)] {
			if l == e {
				return true
			}
		}
	}
	return false
}

// referrerHost is the lower-case host of a referrer URL without "www.".
func referrerHost(raw string) string {
	return strings.TrimPrefix(urlHost(raw), "www.")
}

func urlHost(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "android-app") {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}

// Client is what the User-Agent tells about the visitor's device.
type Client struct {
	Bot     bool
	Device  string
	Browser string
	OS      string
}

// botMarkers are lower-case substrings of User-Agents that browsers never
// send, caught in addition to the parser's own bot list.
var botMarkers = []string{
	"bot", "crawl", "spider", "slurp", "headless", "phantomjs", "puppeteer", "playwright",
	"lighthouse", "pagespeed", "python-requests", "python-urllib", "aiohttp", "go-http-client",
	"curl/", "wget/", "okhttp", "java/", "libwww", "httpclient", "axios/", "node-fetch", "undici",
	"scrapy", "facebookexternalhit", "uptime", "check_http",
}

// ClassifyUserAgent parses a User-Agent into device type and bot flag.
// An empty User-Agent is a bot: every browser sends one.
func ClassifyUserAgent(raw string) Client {
	if strings.TrimSpace(raw) == "" {
		return Client{Bot: true, Device: DeviceUnknown}
	}
	ua := useragent.Parse(raw)
	c := Client{Bot: ua.Bot, Browser: ua.Name, OS: ua.OS, Device: DeviceUnknown}
	lower := strings.ToLower(raw)
	for _, m := range botMarkers {
		if strings.Contains(lower, m) {
			c.Bot = true
			break
		}
	}
	switch {
	case ua.Tablet, ua.IsAndroid() && !strings.Contains(raw, "Mobile"):
		// Android tablets send no "Mobile" token (Google's own advice for
		// telling them from phones); the parser counts them as phones.
		c.Device = DeviceTablet
	case ua.Mobile:
		c.Device = DeviceMobile
	case ua.Desktop:
		c.Device = DeviceDesktop
	}
	return c
}
