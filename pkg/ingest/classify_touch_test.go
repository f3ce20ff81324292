package ingest

import (
	"context"
	"errors"
	"testing"
)

func ctxWith(extra map[string]any) map[string]any {
	c := map[string]any{"url": "https://shop.example/landing", "lang": "tr-TR", "tz": "Europe/Istanbul", "sw": 1024, "sh": 1366}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestParseReadsTouchPoints(t *testing.T) {
	cases := []struct {
		name  string
		touch any // nil: absent
		want  int
	}{
		{"absent", nil, 0},
		{"none", 0, 0},
		{"one", 1, 1},
		{"an iPad", 5, 5},
		{"at the limit", MaxTouch, MaxTouch},
		{"past the limit", MaxTouch + 1, MaxTouch},
		{"far past the limit", 1e300, MaxTouch},
		{"negative", -1, 0},
		{"fractional", 2.5, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			extra := map[string]any{}
			if c.touch != nil {
				extra["touch"] = c.touch
			}
			b, err := Parse(body(t, map[string]any{"ctx": ctxWith(extra)}), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if b.Ctx.Touch != c.want {
				t.Fatalf("touch = %d, want %d", b.Ctx.Touch, c.want)
			}
		})
	}
}

// TestParseRefusesTouchOfTheWrongType: like sw and sh, a touch that is not
// a number refuses the batch with a 400 that names the field.
func TestParseRefusesTouchOfTheWrongType(t *testing.T) {
	_, err := Parse(body(t, map[string]any{"ctx": ctxWith(map[string]any{"touch": "5"})}), testNow)
	var reqErr *RequestError
	if !errors.As(err, &reqErr) || reqErr.Status != 400 {
		t.Fatalf("err = %v, want a 400", err)
	}
}

// TestIPadWithDesktopUserAgentIsStoredAsTablet: the handler passes ctx.touch
// to the classifier, so an iPad sending desktop Safari's User-Agent is a
// tablet and a Mac with the same User-Agent a desktop.
func TestIPadWithDesktopUserAgentIsStoredAsTablet(t *testing.T) {
	const macSafari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
	e := newEnv(t)
	for _, c := range []struct {
		sid   string
		touch int
	}{{"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a71", 5}, {"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a72", 0}} {
		b := body(t, map[string]any{"sid": c.sid, "ctx": ctxWith(map[string]any{"touch": c.touch}),
			"events": []any{event(int(c.touch)+100, "pageview", testNow, nil)}})
		if r := e.do(t, "POST", b, map[string]string{"User-Agent": macSafari}); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	}
	for sid, want := range map[string]string{"0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a71": DeviceTablet, "0193f4c2-7a5e-7c1e-9b1a-3f2d6c8e9a72": DeviceDesktop} {
		var device string
		var bot bool
		if err := e.pool.QueryRow(context.Background(), `SELECT device_type, is_bot FROM sessions WHERE id = $1::uuid`, sid).Scan(&device, &bot); err != nil {
			t.Fatal(err)
		}
		if device != want || bot {
			t.Errorf("session %s: device %s bot %v, want %s and a person", sid, device, bot, want)
		}
	}
}
