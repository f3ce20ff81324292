package ingest

import (
	"strings"
	"testing"
)

func TestTrafficSource(t *testing.T) {
	cases := []struct {
		name string
		ctx  Context
		want string
	}{
		{"gclid", Context{GCLID: "Cj0K", Referrer: "https://www.google.com/"}, SourceGoogleAds},
		{"wbraid", Context{WBRAID: "w"}, SourceGoogleAds},
		{"gbraid with social utm", Context{GBRAID: "g", UTMMedium: "social"}, SourceGoogleAds},
		{"utm cpc without click id", Context{UTMSource: "google", UTMMedium: "cpc"}, SourcePaid},
		{"utm ppc", Context{UTMMedium: "PPC"}, SourcePaid},
		{"utm paid_social", Context{UTMSource: "facebook", UTMMedium: "paid_social", Referrer: "https://l.facebook.com/"}, SourcePaid},
		{"utm display", Context{UTMMedium: "display"}, SourcePaid},
		{"utm social", Context{UTMSource: "newsletter", UTMMedium: "social"}, SourceSocial},
		{"utm source instagram without medium", Context{UTMSource: "instagram"}, SourceSocial},
		{"facebook referrer", Context{Referrer: "https://l.facebook.com/l.php?u=x"}, SourceSocial},
		{"t.co referrer", Context{Referrer: "https://t.co/abc"}, SourceSocial},
		{"youtube referrer", Context{Referrer: "https://m.youtube.com/watch"}, SourceSocial},
		{"google referrer", Context{Referrer: "https://www.google.com/"}, SourceOrganicSearch},
		{"google.com.tr referrer", Context{Referrer: "https://www.google.com.tr/"}, SourceOrganicSearch},
		{"bing referrer", Context{Referrer: "https://www.bing.com/search?q=x"}, SourceOrganicSearch},
		{"duckduckgo referrer", Context{Referrer: "https://duckduckgo.com/"}, SourceOrganicSearch},
		{"yandex referrer", Context{Referrer: "https://yandex.ru/search"}, SourceOrganicSearch},
		{"utm organic", Context{UTMMedium: "organic"}, SourceOrganicSearch},
		{"a look-alike host is a referral", Context{Referrer: "https://mygoogle.com/"}, SourceReferral},
		{"other site", Context{Referrer: "https://blog.example.org/post"}, SourceReferral},
		{"e-mail campaign without referrer", Context{UTMSource: "newsletter", UTMMedium: "email"}, SourceReferral},
		{"same-site referrer", Context{URL: "https://shop.example/b", Referrer: "https://www.shop.example/a"}, SourceDirect},
		{"no referrer", Context{URL: "https://shop.example/"}, SourceDirect},
		{"images.google.com is search", Context{Referrer: "https://images.google.com/"}, SourceOrganicSearch},
		{"m.google.com is search", Context{Referrer: "https://m.google.com/search?q=x"}, SourceOrganicSearch},
		{"google.co.uk referrer", Context{Referrer: "https://www.google.co.uk/"}, SourceOrganicSearch},
		{"the Google app", Context{Referrer: "android-app://com.google.android.googlequicksearchbox/https/www.google.com"}, SourceOrganicSearch},
		{"the Google app without a path", Context{Referrer: "android-app://com.google.android.googlequicksearchbox"}, SourceOrganicSearch},
		{"Gmail on the web", Context{Referrer: "https://mail.google.com/"}, SourceReferral},
		{"Google Docs", Context{Referrer: "https://docs.google.com/document/d/x"}, SourceReferral},
		{"Google Drive", Context{Referrer: "https://drive.google.com/"}, SourceReferral},
		{"Google Calendar", Context{Referrer: "https://calendar.google.com/calendar/r"}, SourceReferral},
		{"Google Sites", Context{Referrer: "https://sites.google.com/view/x"}, SourceReferral},
		{"Google Maps", Context{Referrer: "https://maps.google.com/"}, SourceReferral},
		{"Gmail for Turkey's Google domain", Context{Referrer: "https://mail.google.com.tr/"}, SourceReferral},
		{"the Gmail app", Context{Referrer: "android-app://com.google.android.gm"}, SourceReferral},
		{"the Gmail app with a path", Context{Referrer: "android-app://com.google.android.gm/"}, SourceReferral},
		{"an unknown app", Context{Referrer: "android-app://com.example.reader"}, SourceReferral},
		{"the Facebook app", Context{Referrer: "android-app://com.facebook.katana"}, SourceSocial},
		{"the Instagram app, upper case scheme", Context{Referrer: "ANDROID-APP://com.instagram.android"}, SourceSocial},
		{"Yahoo Mail", Context{Referrer: "https://mail.yahoo.com/d/folders/1"}, SourceReferral},
		{"Yahoo search", Context{Referrer: "https://search.yahoo.com/search?p=x"}, SourceOrganicSearch},
		{"Yahoo search, Turkey", Context{Referrer: "https://tr.search.yahoo.com/"}, SourceOrganicSearch},
		{"Outlook on the web", Context{Referrer: "https://outlook.live.com/mail/0/"}, SourceReferral},
		{"Outlook for work", Context{Referrer: "https://outlook.office.com/"}, SourceReferral},
		{"Yandex Mail", Context{Referrer: "https://mail.yandex.ru/"}, SourceReferral},
		{"Yandex Disk", Context{Referrer: "https://disk.yandex.com.tr/"}, SourceReferral},
		{"AOL Mail", Context{Referrer: "https://mail.aol.com/"}, SourceReferral},
		{"Naver blog", Context{Referrer: "https://blog.naver.com/x"}, SourceReferral},
		{"Naver search", Context{Referrer: "https://search.naver.com/search.naver?query=x"}, SourceOrganicSearch},
		{"Brave search", Context{Referrer: "https://search.brave.com/search?q=x"}, SourceOrganicSearch},
		{"Seznam e-mail", Context{Referrer: "https://email.seznam.cz/"}, SourceReferral},
		{"unparseable referrer", Context{Referrer: "::not a url"}, SourceDirect},
		{"non-http referrer", Context{Referrer: "file:///tmp/x.html"}, SourceDirect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := TrafficSource(c.ctx); got != c.want {
				t.Fatalf("TrafficSource = %s, want %s", got, c.want)
			}
		})
	}
}

func TestClassifyUserAgent(t *testing.T) {
	const macSafari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
	cases := []struct {
		name   string
		ua     string
		touch  int
		device string // "" when the device type of a bot does not matter
		bot    bool
	}{
		{"iPhone Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", 5, DeviceMobile, false},
		{"Android Chrome", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", 5, DeviceMobile, false},
		{"CUBOT phone is no bot", "Mozilla/5.0 (Linux; Android 10; CUBOT_X50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.210 Mobile Safari/537.36", 5, DeviceMobile, false},
		{"Cubot phone in mixed case is no bot", "Mozilla/5.0 (Linux; Android 11; Cubot Note 20) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", 0, DeviceMobile, false},
		{"CUBOT phone's WebView is no bot", "Mozilla/5.0 (Linux; Android 9; CUBOT KINGKONG MINI Build/PPR1.180610.011; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.210 Mobile Safari/537.36", 0, DeviceMobile, false},
		{"iPad", "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", 5, DeviceTablet, false},
		{"iPad with desktop User-Agent and touch", macSafari, 5, DeviceTablet, false},
		{"iPad with desktop User-Agent, two touch points", macSafari, 2, DeviceTablet, false},
		{"Mac without touch", macSafari, 0, DeviceDesktop, false},
		{"Mac reporting one touch point", macSafari, 1, DeviceDesktop, false},
		{"Mac Chrome without touch", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", 0, DeviceDesktop, false},
		{"Windows with a touch screen stays desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", 10, DeviceDesktop, false},
		{"Android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", 10, DeviceTablet, false},
		{"Samsung tablet sending Mobile", "Mozilla/5.0 (Linux; Android 11; SM-T735C) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", 10, DeviceTablet, false},
		{"Amazon Fire in an app", "Mozilla/5.0 (Linux; Android 9; KFMAWI Build/PS7326.3183N; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36", 10, DeviceTablet, false},
		{"Huawei Wi-Fi tablet", "Mozilla/5.0 (Linux; Android 10; AGS3-W09; HMSCore 6.12.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.2.300 Mobile Safari/537.36", 10, DeviceTablet, false},
		{"Coolpad is a phone", "Mozilla/5.0 (Linux; Android 7.1.1; Coolpad E2C) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.198 Mobile Safari/537.36", 5, DeviceMobile, false},
		{"Wileyfox Swift is a phone", "Mozilla/5.0 (Linux; Android 7.1.2; Swift 2 Plus) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.198 Mobile Safari/537.36", 5, DeviceMobile, false},
		{"Android laptop", "Mozilla/5.0 (Linux; Android 9; Latitude E4310) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4147.89 Safari/537.36", 0, DeviceDesktop, false},
		{"Chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", 0, DeviceDesktop, false},
		{"Windows Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", 0, DeviceDesktop, false},
		{"Samsung Internet on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/29.0 Chrome/136.0.0.0 Safari/537.36", 0, DeviceDesktop, false},
		{"macOS Firefox", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", 0, DeviceDesktop, false},
		{"Windows Phone", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063", 0, DeviceMobile, false},
		{"Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0, "", true},
		{"Googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0, "", true},
		{"Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0, "", true},
		{"AhrefsBot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 0, "", true},
		{"MJ12bot", "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", 0, "", true},
		{"a name ending in Bot", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 CybaaBot", 0, "", true},
		{"a crawler in a name", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0; Offline Explorer; MSIECrawler)", 0, "", true},
		{"a monitor in a name", "Mozilla/5.0 (Windows; U; Windows NT 6.0; en-US; rv:1.9.2.28) Gecko/20120306 Firefox/99.0 YottaaMonitor", 0, "", true},
		{"Bing's preview", "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b", 0, "", true},
		{"Google's fetcher beside a browser", "Mozilla/5.0 (X11; Linux x86_64)AppleWebKit/537.36 (KHTML, like Gecko; Google-Ads-Qualify)Chrome/85.0.4183.140 Safari/537.36", 0, "", true},
		{"a contact domain", "PostRank/2.0 (postrank.com)", 0, "", true},
		{"a contact e-mail", "Mozilla/5.0/Firefox/42.0 - nbertaupete95(at)gmail.com", 0, "", true},
		{"a program in a compatible comment", "Mozilla/5.0 (compatible; KenyaDomainScorer/2.1)", 0, "", true},
		{"a bare word", "node", 0, "", true},
		{"HeadlessChrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", 0, "", true},
		{"Selenium", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36; Selenium", 0, "", true},
		{"curl", "curl/8.5.0", 0, "", true},
		{"Go client", "Go-http-client/1.1", 0, "", true},
		{"python", "python-requests/2.32.3", 0, "", true},
		{"python httpx", "python-httpx/0.27.0", 0, "", true},
		{"Java", "Java/17.0.2", 0, "", true},
		{"empty", "", 0, DeviceUnknown, true},
		{"blank", "   ", 5, DeviceUnknown, true},
		{"gibberish", "x", 0, DeviceUnknown, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ClassifyUserAgent(c.ua, c.touch)
			if got.Bot != c.bot {
				t.Fatalf("bot = %v, want %v", got.Bot, c.bot)
			}
			if c.device != "" && got.Device != c.device {
				t.Fatalf("device = %s, want %s", got.Device, c.device)
			}
		})
	}
}

// TestClassifyUserAgentMainstreamBrowsers: the browsers and in-app
// browsers most visitors use are people, on the right device.
func TestClassifyUserAgentMainstreamBrowsers(t *testing.T) {
	cases := []struct {
		name, ua, device string
	}{
		{"Edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", DeviceDesktop},
		{"Opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0", DeviceDesktop},
		{"Yandex Browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36", DeviceDesktop},
		{"Firefox on Linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", DeviceDesktop},
		{"Firefox on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", DeviceDesktop},
		{"Chrome on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", DeviceMobile},
		{"Chrome on iPad", "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", DeviceTablet},
		{"Firefox on Android", "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", DeviceMobile},
		{"Firefox on an Android tablet", "Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0", DeviceTablet},
		{"Samsung Internet", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", DeviceMobile},
		{"Huawei Browser", "Mozilla/5.0 (Linux; Android 10; HarmonyOS; ELS-NX9; HMSCore 6.12.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.2.300 Mobile Safari/537.36", DeviceMobile},
		{"MIUI Browser", "Mozilla/5.0 (Linux; U; Android 13; en-us; 2201117TY Build/TKQ1.221114.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.5.4-gn", DeviceMobile},
		{"Google app on Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.231105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.193 Mobile Safari/537.36 GSA/14.47.24.29.arm64", DeviceMobile},
		{"Google app on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/290.0.579531394 Mobile/15E148 Safari/604.1", DeviceMobile},
		{"Facebook on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.33.118;FBBV/543236540;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.1.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/545138367]", DeviceMobile},
		{"Facebook on Android", "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/444.0.0.37.107;]", DeviceMobile},
		{"Instagram on Android", "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36 Instagram 309.0.0.40.113 Android (34/14; 480dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; en_US; 541635890)", DeviceMobile},
		{"Instagram on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 309.1.0.41.113 (iPhone14,5; iOS 17_1; en_US; en; scale=3.00; 1170x2532; 540361373)", DeviceMobile},
		{"TikTok on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_32.5.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US ByteFullLocale/en isDarkMode/0 WKWebView/1 BytedanceWebview/d8a21c6", DeviceMobile},
		{"LinkedIn on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.1", DeviceMobile},
		{"Pinterest on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]", DeviceMobile},
		{"Snapchat on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.60.0.45 (like Safari/8617.2.4.10.8, panda)", DeviceMobile},
		{"WeChat on Android", "Mozilla/5.0 (Linux; Android 13; V2217A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/5223 MMWEBSDK/20230805 MMWEBID/2578 MicroMessenger/8.0.42.2460(0x28002A37) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64", DeviceMobile},
		{"DuckDuckGo on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 DuckDuckGo/7 Safari/605.1.15", DeviceMobile},
		{"UC Browser", "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX2030 Build/QKQ1.200209.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36", DeviceMobile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ClassifyUserAgent(c.ua, 0)
			if got.Bot || got.Device != c.device {
				t.Fatalf("got bot %v device %s, want a person on %s", got.Bot, got.Device, c.device)
			}
		})
	}
}

func TestUACacheAgreesWithClassifyUserAgent(t *testing.T) {
	c := newUACache()
	long := "Mozilla/5.0 (Linux; Android 14; CUBOT_X50) " + strings.Repeat("x", maxCachedUA)
	for _, ua := range []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"", long,
	} {
		for _, touch := range []int{0, 5} {
			for range 2 { // the second answer comes from the cache
				if got, want := c.Classify(ua, touch), ClassifyUserAgent(ua, touch); got != want {
					t.Fatalf("%q touch %d: cached %+v, want %+v", ua, touch, got, want)
				}
			}
		}
	}
	if _, ok := c.lru.Get(uaKey{long, 0}); ok {
		t.Fatal("a User-Agent longer than maxCachedUA was cached")
	}
	if c.lru.Len() != 6 {
		t.Fatalf("%d entries cached, want 6 (3 User-Agents × 2 touch values)", c.lru.Len())
	}
}
