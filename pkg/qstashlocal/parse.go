package qstashlocal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const publishPrefix = "/v2/publish/"

// Headers of a publish request that configure the message.
const (
	hRetries         = "Upstash-Retries"
	hDelay           = "Upstash-Delay"
	hNotBefore       = "Upstash-Not-Before"
	hDedupID         = "Upstash-Deduplication-Id"
	hContentDedup    = "Upstash-Content-Based-Deduplication"
	hFailureCallback = "Upstash-Failure-Callback"
	hMethod          = "Upstash-Method"
	hTimeout         = "Upstash-Timeout"
	forwardPrefix    = "Upstash-Forward-"
	upstashPrefix    = "Upstash-"
	// A 489 answer with Upstash-NonRetryable-Error: true fails a message at once.
	nonRetryableStatus = 489
)

// supportedHeaders are the Upstash-* publish headers qstashlocal imitates;
// any other Upstash-* header (callbacks, cron, flow control, custom retry
// delays, …) is refused with a 400 so that a caller relying on it notices.
var supportedHeaders = []string{hRetries, hDelay, hNotBefore, hDedupID, hContentDedup, hFailureCallback, hMethod, hTimeout}

// publishRequest is a validated publish.
type publishRequest struct {
	destination     string
	method          string
	header          http.Header // sent to the destination: Content-Type and the forwarded headers
	retries         int
	notBefore       time.Time
	dedupKey        string // "" when not deduplicated
	failureCallback string
	timeout         time.Duration
}

// badRequest is a publish refused for its input, answered with status and
// {"error": msg}.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func refuse(format string, args ...any) *badRequest {
	return &badRequest{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// destinationOf takes the destination URL from a publish request's raw
// request URI: QStash takes everything after /v2/publish/, query included,
// either as it is or percent-encoded as a whole (encodeURIComponent).
func destinationOf(requestURI string) (string, error) {
	rest, ok := strings.CutPrefix(requestURI, publishPrefix)
	if !ok || rest == "" {
		return "", refuse("invalid destination url: empty; publish to /v2/publish/<destination url>")
	}
	lower := strings.ToLower(rest)
	if strings.HasPrefix(lower, "http%3a") || strings.HasPrefix(lower, "https%3a") {
		decoded, err := url.PathUnescape(rest)
		if err != nil {
			return "", refuse("invalid destination url %q: %v", rest, err)
		}
		rest = decoded
	}
	if err := checkURL(rest); err != nil {
		return "", refuse("invalid destination url %q: %v (qstashlocal imitates only URL destinations, not URL groups, queues or APIs)", rest, err)
	}
	return rest, nil
}

// checkURL accepts an absolute http or https URL with a host. Unlike QStash,
// loopback hosts are allowed: in dev and tests every destination is local.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("cannot parse it")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// url")
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("no host")
	}
	return nil
}

// parsePublish validates the configuring headers of a publish to destination.
func parsePublish(h http.Header, destination string, body []byte, now time.Time, lim limits) (*publishRequest, error) {
	p := &publishRequest{destination: destination, method: http.MethodPost, header: http.Header{}, retries: lim.maxRetries}
	for name, values := range h {
		if !strings.HasPrefix(name, upstashPrefix) {
			continue
		}
		if fwd, ok := strings.CutPrefix(name, forwardPrefix); ok {
			if fwd == "" {
				return nil, refuse("invalid header %s: no header name after the prefix", name)
			}
			p.header[http.CanonicalHeaderKey(fwd)] = slices.Clone(values)
			continue
		}
		if !slices.Contains(supportedHeaders, name) {
			return nil, refuse("header %s is not supported by qstashlocal (it imitates %s and %s*)", name, strings.Join(supportedHeaders, ", "), forwardPrefix)
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		if _, forwarded := p.header["Content-Type"]; !forwarded {
			p.header.Set("Content-Type", ct)
		}
	}
	if v := h.Get(hRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > lim.maxRetries {
			return nil, refuse("invalid %s %q: want a whole number from 0 to %d", hRetries, v, lim.maxRetries)
		}
		p.retries = n
	}
	p.notBefore = now
	if v := h.Get(hDelay); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, refuse("invalid %s %q: %v", hDelay, v, err)
		}
		if d > lim.maxDelay {
			return nil, refuse("invalid %s %q: longer than the maximum delay of %s", hDelay, v, lim.maxDelay)
		}
		p.notBefore = now.Add(d)
	}
	if v := h.Get(hNotBefore); v != "" { // overrides Upstash-Delay, as in QStash
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec < 0 {
			return nil, refuse("invalid %s %q: want a unix time in seconds", hNotBefore, v)
		}
		if sec > now.Add(lim.maxDelay).Unix() {
			return nil, refuse("invalid %s %q: further ahead than the maximum delay of %s", hNotBefore, v, lim.maxDelay)
		}
		p.notBefore = time.Unix(sec, 0)
	}
	if v := h.Get(hMethod); v != "" {
		switch v {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			p.method = v
		default:
			return nil, refuse("invalid %s %q: want GET, POST, PUT, PATCH or DELETE", hMethod, v)
		}
	}
	p.timeout = lim.attemptTimeout
	if v := h.Get(hTimeout); v != "" {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			return nil, refuse("invalid %s %q: want a positive duration such as 10s, 5m or 2h", hTimeout, v)
		}
		if d > lim.attemptTimeout {
			return nil, refuse("invalid %s %q: longer than the maximum of %s", hTimeout, v, lim.attemptTimeout)
		}
		p.timeout = d
	}
	if v := h.Get(hFailureCallback); v != "" {
		if err := checkURL(v); err != nil {
			return nil, refuse("invalid %s %q: %v", hFailureCallback, v, err)
		}
		p.failureCallback = v
	}
	if v := h.Get(hDedupID); v != "" {
		p.dedupKey = "id:" + v
	}
	switch v := h.Get(hContentDedup); v {
	case "", "false":
	case "true":
		if p.dedupKey == "" {
			p.dedupKey = "content:" + contentKey(destination, body, p.header)
		}
	default:
		return nil, refuse("invalid %s %q: want true or false", hContentDedup, v)
	}
	return p, nil
}

// contentKey is what content-based deduplication compares: destination, body,
// Content-Type and forwarded headers.
func contentKey(destination string, body []byte, header http.Header) string {
	sum := sha256.New()
	fmt.Fprintf(sum, "%d:%s\n%d:", len(destination), destination, len(body))
	sum.Write(body)
	names := make([]string, 0, len(header))
	for name := range header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range header[name] {
			fmt.Fprintf(sum, "\n%s:%d:%s", name, len(v), v)
		}
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// parseDuration reads QStash's `<number><unit>` (10s, 1m, 6h, 7d).
func parseDuration(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("want <number><unit> such as 10s, 1m, 6h or 7d")
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	default:
		return 0, fmt.Errorf("want <number><unit> with unit s, m, h or d")
	}
	digits := s[:len(s)-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("want <number><unit> with a whole number such as 10s, 1m, 6h or 7d")
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("number out of range")
	}
	return time.Duration(n) * unit, nil
}

// backoff is QStash's wait before retry n (n ≥ 1): min(1 day, e^(2.5n))
// seconds, in whole seconds: 12s, 2m28s, 30m8s, 6h7m6s, 24h, 24h, …
func backoff(n int) time.Duration {
	sec := math.Exp(2.5 * float64(n))
	if sec >= 86400 || math.IsInf(sec, 1) {
		return 24 * time.Hour
	}
	return time.Duration(math.Floor(sec)) * time.Second
}

// retryAfterHeaders are the answer headers QStash reads to schedule the next
// retry, in order.
var retryAfterHeaders = []string{"Retry-After", "X-Ratelimit-Reset", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens"}

const maxRetryAfter = 24 * time.Hour

// retryAfter reads the wait an answer asks for: seconds, an HTTP date or a Go
// duration (6m5s). It reports false when there is none, it cannot be read, or
// it is beyond a day (QStash then falls back to its back-off).
func retryAfter(h http.Header, now time.Time) (time.Duration, string, bool) {
	for _, name := range retryAfterHeaders {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		d, ok := parseRetryAfter(v, now)
		if ok {
			return d, name + ": " + v, true
		}
	}
	return 0, "", false
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	var d time.Duration
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		if sec < 0 || sec > int64(maxRetryAfter/time.Second) {
			return 0, false
		}
		d = time.Duration(sec) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else if pd, err := time.ParseDuration(v); err == nil && pd >= 0 {
		d = pd
	} else {
		return 0, false
	}
	if d > maxRetryAfter {
		return 0, false
	}
	return d, true
}
