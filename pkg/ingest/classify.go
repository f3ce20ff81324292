package ingest

import (
	"net/url"
	"strings"
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
// whose host has one of these labels before its last (google.com,
// google.com.tr, www.bing.com, …) comes from the engine's site, and is
// organic search unless it is one of the engine's other services.
var searchEngines = []string{
	"google", "bing", "yahoo", "duckduckgo", "yandex", "baidu", "ecosia",
	"naver", "seznam", "startpage", "qwant", "search.brave", "ask", "aol",
}

// googleSearchHosts are the subdomains of google.<tld> that serve search
// results: every other one (mail, docs, drive, calendar, sites, maps, news,
// …) is a Google product that links out, a referral.
var googleSearchHosts = map[string]bool{"": true, "www": true, "m": true, "images": true, "scholar": true}

// nonSearchServices are subdomain labels of the other engines' mail and
// document services (mail.yahoo.com, mail.yandex.ru, mail.aol.com).
var nonSearchServices = map[string]bool{
	"mail": true, "email": true, "webmail": true, "inbox": true, "docs": true, "drive": true,
	"disk": true, "calendar": true, "contacts": true, "messages": true, "cloud": true,
	"outlook": true, "blog": true, "cafe": true,
}

// appReferrers are Android apps by the package name they send as an
// "android-app://" referrer. Any other app (Gmail is com.google.android.gm)
// is a referral.
var appReferrers = map[string]string{
	"com.google.android.googlequicksearchbox": SourceOrganicSearch, // the Google app
	"ru.yandex.searchplugin":                  SourceOrganicSearch,
	"com.microsoft.bing":                      SourceOrganicSearch,
	"com.facebook.katana":                     SourceSocial,
	"com.facebook.lite":                       SourceSocial,
	"com.facebook.orca":                       SourceSocial,
	"com.instagram.android":                   SourceSocial,
	"com.twitter.android":                     SourceSocial,
	"com.linkedin.android":                    SourceSocial,
	"com.pinterest":                           SourceSocial,
	"com.reddit.frontpage":                    SourceSocial,
	"com.zhiliaoapp.musically":                SourceSocial, // TikTok
	"com.google.android.youtube":              SourceSocial,
	"org.telegram.messenger":                  SourceSocial,
	"com.whatsapp":                            SourceSocial,
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
	if pkg, ok := androidApp(c.Referrer); ok {
		if src, known := appReferrers[pkg]; known {
			return src
		}
		return SourceReferral
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
			if i := strings.Index(host, e); i >= 0 && (i == 0 || host[i-1] == '.') {
				return !hasNonSearchService(labels[:strings.Count(host[:i], ".")])
			}
			continue
		}
		// The engine's name is a label of the host other than the last
		// (google.com, www.google.com.tr), so "mygoogle.com" is not one.
		for k, l := range labels[:max(len(labels)-1, 0)] {
			if l != e {
				continue
			}
			if e == "google" {
				return googleSearchHosts[strings.Join(labels[:k], ".")]
			}
			return !hasNonSearchService(labels[:k])
		}
	}
	return false
}

// hasNonSearchService reports whether the labels before an engine's name
// (["mail"] in mail.yahoo.com) name one of its non-search services.
func hasNonSearchService(sub []string) bool {
	for _, l := range sub {
		if nonSearchServices[l] {
			return true
		}
	}
	return false
}

// androidApp returns the package name of an "android-app://" referrer, which
// Android sends for links opened from an app.
func androidApp(raw string) (string, bool) {
	const scheme = "android-app://"
	if len(raw) < len(scheme) || !strings.EqualFold(raw[:len(scheme)], scheme) {
		return "", false
	}
	pkg, _, _ := strings.Cut(raw[len(scheme):], "/")
	return strings.ToLower(pkg), true
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
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}
