package ingest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const uaCorpusPath = "testdata/ua/corpus.json"

func readUACorpus(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(uaCorpusPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUserAgentCorpus holds the classifier to the bar on real
// User-Agents from public test suites (testdata/ua/README.md).
func TestUserAgentCorpus(t *testing.T) {
	f, err := MeasureUACorpus(readUACorpus(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(f)
	if f.Humans < 1000 || f.Bots < 500 {
		t.Fatalf("corpus too small: %d humans, %d bots", f.Humans, f.Bots)
	}
	failed := false
	if got := f.DeviceRightShare(); got < 0.95 {
		t.Errorf("device type right for %.2f %% of humans, want ≥ 95 %%", 100*got)
		failed = true
	}
	if got := f.HumansAsBotsShare(); got > 0.005 {
		t.Errorf("%.2f %% of humans called bots, want ≤ 0.5 %%", 100*got)
		failed = true
	}
	if got := f.BotsFoundShare(); got < 0.95 {
		t.Errorf("%.2f %% of bots recognised, want ≥ 95 %%", 100*got)
		failed = true
	}
	if failed || testing.Verbose() {
		for _, m := range f.Misses {
			t.Log(m)
		}
	}
}

func TestMeasureUACorpusCountsEachKindOfMistake(t *testing.T) {
	corpus := `{
		"humans": [
			{"ua": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "device": "desktop"},
			{"ua": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "device": "mobile"},
			{"ua": "curl/8.5.0", "device": "desktop"}
		],
		"bots": [
			{"ua": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "name": "Googlebot"},
			{"ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "name": "disguised"}
		]
	}`
	f, err := MeasureUACorpus([]byte(corpus))
	if err != nil {
		t.Fatal(err)
	}
	if f.Humans != 3 || f.Bots != 2 || f.DeviceRight != 1 || f.HumansAsBots != 1 || f.BotsFound != 1 || len(f.Misses) != 3 {
		t.Fatalf("figures %+v", f)
	}
	s := f.String()
	for _, want := range []string{"device right 33.3 % of 3 humans", "humans called bots 33.33 %", "bots recognised 50.0 % of 2", "µs/parse"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to contain %q", s, want)
		}
	}
}

func TestMeasureUACorpusRefusesBadJSON(t *testing.T) {
	if _, err := MeasureUACorpus([]byte(`{"humans": [`)); err == nil {
		t.Fatal("no error for truncated JSON")
	}
	if _, err := MeasureUACorpusFile("testdata/ua/missing.json"); err == nil {
		t.Fatal("no error for a missing file")
	}
	f, err := MeasureUACorpus([]byte(`{}`))
	if err != nil || f.DeviceRightShare() != 0 || f.BotsFoundShare() != 0 || f.PerParse != 0 {
		t.Fatalf("empty corpus: %+v, %v", f, err)
	}
}

// FuzzClassifyUserAgent: any string classifies without panicking, into a
// known device type, the same way twice; touch points change nothing but a
// Mac's device type; a blank string is a bot.
func FuzzClassifyUserAgent(f *testing.F) {
	var c UACorpus
	if err := json.Unmarshal(readUACorpus(f), &c); err != nil {
		f.Fatal(err)
	}
	for i, h := range c.Humans {
		if i%25 == 0 {
			f.Add(h.UA, 0)
		}
	}
	for i, b := range c.Bots {
		if i%25 == 0 {
			f.Add(b.UA, 5)
		}
	}
	f.Add("", 0)
	f.Add("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", 5)
	f.Add("Mozilla/5.0 (Linux; Android 10; "+strings.Repeat("CUBOT", 40)+") Mobile Safari/537.36", 0)
	f.Add("(compatible;", -1)
	f.Add("a@b", 1000)
	f.Fuzz(func(t *testing.T, raw string, touch int) {
		got := ClassifyUserAgent(raw, touch)
		switch got.Device {
		case DeviceMobile, DeviceTablet, DeviceDesktop, DeviceUnknown:
		default:
			t.Fatalf("device %q", got.Device)
		}
		if again := ClassifyUserAgent(raw, touch); again != got {
			t.Fatalf("not deterministic: %+v then %+v", got, again)
		}
		noTouch := ClassifyUserAgent(raw, 0)
		if noTouch.Bot != got.Bot || noTouch.Browser != got.Browser || noTouch.OS != got.OS {
			t.Fatalf("touch changed more than the device: %+v vs %+v", got, noTouch)
		}
		if noTouch.Device != got.Device && (got.OS != "macOS" || got.Device != DeviceTablet || touch <= 1) {
			t.Fatalf("touch %d changed %s into %s", touch, noTouch.Device, got.Device)
		}
		if strings.TrimSpace(raw) == "" && !got.Bot {
			t.Fatal("a blank User-Agent is a person")
		}
	})
}

func BenchmarkClassifyUserAgent(b *testing.B) {
	var c UACorpus
	if err := json.Unmarshal(readUACorpus(b), &c); err != nil {
		b.Fatal(err)
	}
	var all []string
	for _, h := range c.Humans {
		all = append(all, h.UA)
	}
	for _, x := range c.Bots {
		all = append(all, x.UA)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ClassifyUserAgent(all[i%len(all)], 0)
		i++
	}
}
