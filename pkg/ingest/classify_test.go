package ingest

import "testing"

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
	cases := []struct {
		name   string
		ua     string
		device string
		bot    bool
	}{
		{"iPhone Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", DeviceMobile, false},
		{"Android Chrome", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", DeviceMobile, false},
		{"iPad", "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", DeviceTablet, false},
		{"Android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", DeviceTablet, false},
		{"Windows Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", DeviceDesktop, false},
		{"macOS Firefox", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", DeviceDesktop, false},
		{"Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", true},
		{"Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "", true},
		{"headless Chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", "", true},
		{"curl", "curl/8.5.0", "", true},
		{"Go client", "Go-http-client/1.1", "", true},
		{"python", "python-requests/2.32.3", "", true},
		{"empty", "", DeviceUnknown, true},
		{"gibberish", "x", DeviceUnknown, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ClassifyUserAgent(c.ua)
			if got.Bot != c.bot {
				t.Fatalf("bot = %v, want %v", got.Bot, c.bot)
			}
			if c.device != "" && got.Device != c.device {
				t.Fatalf("device = %s, want %s", got.Device, c.device)
			}
		})
	}
}
