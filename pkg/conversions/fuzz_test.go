package conversions_test

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDelivery: whatever body a delivery carries, signed or not, the worker
// answers 401 without a valid signature, never a 5xx with the database up,
// and talks to Google only for the one conversion that exists.
func FuzzDelivery(f *testing.F) {
	l := newLoop(f, loopOptions{dry: true})
	id := l.insertConversion(f, "google_ads", "gclid", "Cj0KCQ-fuzz", time.Now().Add(-time.Hour), true)
	for _, s := range []string{`{"conversion_id":"` + id + `"}`, `{"conversion_id":"00000000-0000-4000-8000-000000000000"}`,
		`{"conversion_id":1}`, `{}`, `null`, `[]`, `{"conversion_id":"` + id + `","x":[` + "\x00" + `]}`, ``} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		d := l.signed(id)
		d.body, d.sign = string(body), sign
		a := l.send(t, d, d.body, nil)
		var msg struct {
			ConversionID string `json:"conversion_id"`
		}
		ours := json.Unmarshal(body, &msg) == nil && msg.ConversionID == id
		switch {
		case !sign && a.status != 401:
			t.Fatalf("unsigned %q: %d", body, a.status)
		case a.status >= 500:
			t.Fatalf("%q: %d %v", body, a.status, a.body)
		case a.status == 200 && !ours:
			t.Fatalf("%q answered 200 for no conversion of ours: %v", body, a.body)
		}
	})
}
