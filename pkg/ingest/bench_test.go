package ingest

import (
	"fmt"
	"testing"
)

func BenchmarkParse3(b *testing.B) {
	ts := testNow.UnixMilli()
	body := fmt.Appendf(nil, `{"v":1,"site":"bench","sid":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a01","vid":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a02","sent_at":%d,"failures":0,"channel":"primary",`+
		`"ctx":{"url":"https://shop.example/landing?gclid=Cj0KCQ","referrer":"https://www.google.com/","gclid":"Cj0KCQ","wbraid":null,"gbraid":null,`+
		`"utm_source":"google","utm_medium":"cpc","utm_campaign":"brand","utm_term":null,"utm_content":null,"lang":"tr-TR","tz":"Europe/Istanbul","sw":390,"sh":844},`+
		`"events":[{"id":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a03","type":"pageview","ts":%d,"url":"https://shop.example/p/1","title":"Product 1"},`+
		`{"id":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a04","type":"heartbeat","ts":%d,"active_ms":15000,"scroll":20,"state":"active"},`+
		`{"id":"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a05","type":"custom","ts":%d,"url":"https://shop.example/p/1","name":"add_to_cart","props":{"sku":"A-1","qty":1}}]}`, ts, ts, ts, ts)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
