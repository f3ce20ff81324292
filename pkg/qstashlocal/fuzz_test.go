package qstashlocal

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzDestinationOf(f *testing.F) {
	for _, s := range []string{
		"/v2/publish/http://127.0.0.1:8080/api/sync-google-ads",
		"/v2/publish/https://example.com/a?b=c&d=e",
		"/v2/publish/https%3A%2F%2Fexample.com%2Fa%3Fb%3Dc",
		"/v2/publish/HTTP%3a%2f%2fx",
		"/v2/publish/http%3A%2F%2Fx%zz",
		"/v2/publish/http://",
		"/v2/publish/my-group",
		"/v2/publish/",
		"/v2/keys",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		dest, err := destinationOf(uri)
		if err != nil {
			if _, ok := err.(*badRequest); !ok || err.Error() == "" {
				t.Fatalf("destinationOf(%q): %T %v, want a 400 with a message", uri, err, err)
			}
			return
		}
		if checkURL(dest) != nil {
			t.Fatalf("destinationOf(%q) = %q, which checkURL refuses", uri, dest)
		}
		if !strings.HasPrefix(uri, publishPrefix) {
			t.Fatalf("destinationOf(%q) accepted a path outside the publish API", uri)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10s", "1m", "6h", "7d", "0s", "10", "s", "-5s", "1.5h", "99999999999999999999d", "9223372036s", "106751d", "106752d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("parseDuration(%q) = %s, negative", s, d)
		}
		// Accepted forms are exactly <digits><unit>, and mean what they say.
		n, perr := strconv.ParseInt(s[:len(s)-1], 10, 64)
		if perr != nil || s[0] == '+' || s[0] == '-' {
			t.Fatalf("parseDuration(%q) accepted a malformed number", s)
		}
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
		if time.Duration(n)*unit != d {
			t.Fatalf("parseDuration(%q) = %s", s, d)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"0", "30", "86400", "86401", "-1", "6m5s", "Sun, 01 Mar 2026 12:01:00 GMT", "Sunday, 01-Mar-26 12:01:00 GMT", "later", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if ok && (d < 0 || d > maxRetryAfter) {
			t.Fatalf("parseRetryAfter(%q) = %s, outside [0, 24h]", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) refused but returned %s", s, d)
		}
	})
}
