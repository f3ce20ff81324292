package qstashlocal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/upstash/qstash-go"
)

// The schedule QStash documents: min(1 day, e^(2.5n)) seconds.
var wantBackoff = []time.Duration{
	12 * time.Second,
	2*time.Minute + 28*time.Second,
	30*time.Minute + 8*time.Second,
	6*time.Hour + 7*time.Minute + 6*time.Second,
	24 * time.Hour,
	24 * time.Hour,
	24 * time.Hour,
}

func TestBackoff(t *testing.T) {
	for i, want := range wantBackoff {
		if got := backoff(i + 1); got != want {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, want)
		}
	}
	if got := backoff(1000); got != 24*time.Hour {
		t.Errorf("backoff(1000) = %s", got)
	}
}

func TestRetriesFollowTheBackoffSchedule(t *testing.T) {
	t0 := manualNow()
	clock := NewManualClock(t0)
	srv := start(t, Options{Clock: clock})
	dest := newSink(t, always(http.StatusInternalServerError))
	res, err := sdk(t, srv).PublishJSON(qstash.PublishJSONOptions{Url: dest.URL + "/hook", Body: map[string]any{"a": 1}, Retries: qstash.RetryCount(5)})
	if err != nil {
		t.Fatal(err)
	}
	at := t0
	for retry := range 5 {
		atts := waitAttempts(t, srv, retry+1)
		a := atts[retry]
		if a.Retried != retry || a.Header.Get("Upstash-Retried") != strconv.Itoa(retry) || !a.At.Equal(at) {
			t.Fatalf("attempt %d: retried %d, header %q, at %v; want %d at %v", retry, a.Retried, a.Header.Get("Upstash-Retried"), a.At, retry, at)
		}
		if a.Outcome != OutcomeRetry || a.Status != 500 || a.NextDelay != wantBackoff[retry] || a.RetryAfter != "" {
			t.Fatalf("attempt %d: %s %d next %s (%q), want retry after %s", retry, a.Outcome, a.Status, a.NextDelay, a.RetryAfter, wantBackoff[retry])
		}
		if m, _ := srv.Message(res.MessageId); m.State != StateRetry || m.Retried != retry+1 {
			t.Fatalf("after attempt %d: %+v", retry, m)
		}
		if n := clock.Advance(wantBackoff[retry] - time.Second); n != 0 {
			t.Fatalf("retry %d started %s early", retry+1, time.Second)
		}
		if n := clock.Advance(time.Second); n != 1 {
			t.Fatalf("retry %d did not start after %s", retry+1, wantBackoff[retry])
		}
		at = at.Add(wantBackoff[retry])
	}
	atts := waitAttempts(t, srv, 6)
	last := atts[5]
	if last.Retried != 5 || last.Outcome != OutcomeDead || last.NextDelay != 0 || !last.At.Equal(at) {
		t.Fatalf("last attempt %+v", last)
	}
	waitFor(t, srv, "idle", srv.Idle)
	if clock.Waiting() != 0 {
		t.Errorf("%d waits left after the last retry", clock.Waiting())
	}
	var got []string
	for _, r := range dest.requests() {
		got = append(got, r.Header.Get("Upstash-Retried"))
	}
	if len(got) != 6 || got[0] != "0" || got[5] != "5" {
		t.Errorf("Upstash-Retried seen by the destination: %v", got)
	}
	dl := srv.DeadLetters()
	if len(dl) != 1 || dl[0].MessageID != res.MessageId || dl[0].Retried != 5 || dl[0].MaxRetries != 5 || dl[0].ResponseStatus != 500 || !dl[0].At.Equal(at) {
		t.Errorf("dead letters %+v", dl)
	}
}

func TestScaleCompressesTheSchedule(t *testing.T) {
	// Two failures then success: 12 s + 2m28s of waits, which at Scale 1e6
	// take under a millisecond; unscaled, the 20 s wait below would run out.
	srv := start(t, Options{Scale: 1e6})
	dest := newSink(t, func(n int, _ received) (int, http.Header, string) {
		if n < 2 {
			return 503, nil, ""
		}
		return 200, nil, ""
	})
	if status, body := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", h("Upstash-Delay", "1h"), "x"); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	waitFor(t, srv, "delivered", func() bool { return len(srv.Attempts()) == 3 && srv.Idle() })
	atts := srv.Attempts()
	if atts[0].NextDelay != wantBackoff[0] || atts[1].NextDelay != wantBackoff[1] || atts[2].Outcome != OutcomeDelivered || atts[2].Retried != 2 {
		t.Errorf("attempts %+v", atts)
	}
	if n := len(srv.DeadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t0 := manualNow()
	clock := NewManualClock(t0)
	srv := start(t, Options{Clock: clock, MaxRetries: 10}) // enough retries to reach each case
	answers := []struct {
		status int
		name   string
		value  func() string
		want   time.Duration
	}{
		{503, "Retry-After", func() string { return "0" }, 0},
		{429, "Retry-After", func() string { return "30" }, 30 * time.Second},
		{429, "Retry-After", func() string { return clock.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat) }, 2 * time.Minute},
		{503, "X-RateLimit-Reset", func() string { return "6m5s" }, 6*time.Minute + 5*time.Second},
		{503, "Retry-After", func() string { return "86400" }, 24 * time.Hour}, // a day: honoured
		{503, "Retry-After", func() string { return "86401" }, wantBackoff[5]}, // beyond a day: back-off (retry 6)
		{503, "Retry-After", func() string { return "soon" }, wantBackoff[6]},  // unreadable: back-off (retry 7)
	}
	dest := newSink(t, func(n int, _ received) (int, http.Header, string) {
		if n >= len(answers) {
			return 200, nil, ""
		}
		a := answers[n]
		return a.status, http.Header{a.name: {a.value()}}, ""
	})
	if status, body := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", h("Upstash-Retries", "10"), "x"); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	for i, a := range answers {
		atts := waitAttempts(t, srv, i+1)
		got := atts[i]
		if got.Outcome != OutcomeRetry || got.NextDelay != a.want {
			t.Fatalf("answer %d (%s): next delay %s (%q), want %s", i, a.name, got.NextDelay, got.RetryAfter, a.want)
		}
		if a.want == 0 {
			continue // Retry-After: 0 retries at once, without the clock moving
		}
		if n := clock.Advance(a.want - time.Second); n != 0 {
			t.Fatalf("answer %d: retried before %s", i, a.want)
		}
		clock.Advance(time.Second)
	}
	atts := waitAttempts(t, srv, len(answers)+1)
	if last := atts[len(answers)]; last.Outcome != OutcomeDelivered || last.Retried != len(answers) {
		t.Errorf("last attempt %+v", last)
	}
	if atts[1].RetryAfter != "Retry-After: 30" || atts[3].RetryAfter != "X-Ratelimit-Reset: 6m5s" || atts[5].RetryAfter != "" {
		t.Errorf("recorded reasons %q %q %q", atts[1].RetryAfter, atts[3].RetryAfter, atts[5].RetryAfter)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"86400", 24 * time.Hour, true},
		{"86401", 0, false},
		{"-1", 0, false},
		{"99999999999999999999", 0, false},
		{"Sun, 01 Mar 2026 12:01:00 GMT", time.Minute, true},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0, true}, // in the past: at once
		{"Mon, 02 Mar 2026 12:00:00 GMT", 24 * time.Hour, true},
		{"Mon, 02 Mar 2026 12:00:01 GMT", 0, false},
		{"6m5s", 6*time.Minute + 5*time.Second, true},
		{"1500ms", 1500 * time.Millisecond, true},
		{"24h", 24 * time.Hour, true},
		{"24h0m1s", 0, false},
		{"-5s", 0, false},
		{"later", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDeadLetterAndFailureCallback(t *testing.T) {
	srv := start(t, Options{Scale: 1e6})
	dest := newSink(t, func(int, received) (int, http.Header, string) {
		return 500, http.Header{"X-Why": {"db down"}}, "boom"
	})
	callback := newSink(t, always(200))
	res, err := sdk(t, srv).PublishJSON(qstash.PublishJSONOptions{
		Url: dest.URL + "/hook", Body: map[string]any{"c": 1}, Retries: qstash.RetryCount(2),
		FailureCallback: callback.URL + "/failed", Headers: map[string]string{"X-Trace": "t"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, srv, "failure callback", func() bool { return len(srv.Attempts()) == 4 && srv.Idle() })

	atts := srv.AttemptsOf(res.MessageId)
	if len(atts) != 3 || atts[0].Outcome != OutcomeRetry || atts[1].Outcome != OutcomeRetry || atts[2].Outcome != OutcomeDead || atts[2].Retried != 2 {
		t.Fatalf("attempts %+v", atts)
	}
	dl := srv.DeadLetters()
	if len(dl) != 1 {
		t.Fatalf("dead letters %+v", dl)
	}
	d := dl[0]
	if d.MessageID != res.MessageId || d.Retried != 2 || d.MaxRetries != 2 || d.ResponseStatus != 500 ||
		string(d.ResponseBody) != "boom" || string(d.Body) != `{"c":1}` || d.URL != dest.URL+"/hook" || d.Header.Get("X-Trace") != "t" {
		t.Errorf("dead letter %+v", d)
	}
	if m, _ := srv.Message(res.MessageId); m.State != StateFailed {
		t.Errorf("message state %s", m.State)
	}

	reqs := callback.requests()
	if len(reqs) != 1 {
		t.Fatalf("failure callback got %d requests", len(reqs))
	}
	r := reqs[0]
	receiver := qstash.NewReceiver(srv.CurrentSigningKey(), srv.NextSigningKey())
	if err := receiver.Verify(qstash.VerifyOptions{Signature: r.Header.Get("Upstash-Signature"), Body: r.Body, Url: callback.URL + "/failed"}); err != nil {
		t.Errorf("failure callback signature: %v", err)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Upstash-Retried") != "0" || r.Header.Get("Upstash-Message-Id") == res.MessageId {
		t.Errorf("failure callback headers %v", r.Header)
	}
	var body FailureCallbackBody
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	respBody, _ := base64.StdEncoding.DecodeString(body.Body)
	srcBody, _ := base64.StdEncoding.DecodeString(body.SourceBody)
	if body.Status != 500 || string(respBody) != "boom" || body.Header.Get("X-Why") != "db down" || body.Retried != 2 || body.MaxRetries != 2 ||
		body.DlqID != d.DlqID || body.SourceMessageID != res.MessageId || body.URL != dest.URL+"/hook" || body.Method != "POST" ||
		string(srcBody) != `{"c":1}` || body.SourceHeader.Get("X-Trace") != "t" || body.CallerIP != "127.0.0.1" || body.CreatedAt == 0 {
		t.Errorf("failure callback body %s", r.Body)
	}
	cbAtt := srv.Attempts()[3]
	if cbAtt.FailureCallbackFor != res.MessageId || cbAtt.Outcome != OutcomeDelivered {
		t.Errorf("callback attempt %+v", cbAtt)
	}
}

func TestNonRetryableAnswerFailsAtOnce(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, func(int, received) (int, http.Header, string) {
		return 489, http.Header{"Upstash-NonRetryable-Error": {"true"}}, "bad payload"
	})
	if status, _ := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", h("Upstash-Retries", "3"), "x"); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, srv, "dead", func() bool { return len(srv.DeadLetters()) == 1 })
	if atts := srv.Attempts(); len(atts) != 1 || atts[0].Outcome != OutcomeDead || atts[0].Status != 489 {
		t.Errorf("attempts %+v", atts)
	}
}

func TestNetworkErrorsAndTimeoutsAreRetried(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/gone"
	closed.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	srv := start(t, Options{Scale: 1e6, AttemptTimeout: 200 * time.Millisecond})
	for _, dest := range []string{closedURL, slow.URL + "/slow"} {
		if status, body := rawPublish(t, srv, "/v2/publish/"+dest, h("Upstash-Retries", "1"), "x"); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	waitFor(t, srv, "both dead", func() bool { return len(srv.DeadLetters()) == 2 })
	atts := srv.Attempts()
	if len(atts) != 4 {
		t.Fatalf("%d attempts, want 4", len(atts))
	}
	for _, a := range atts {
		if a.Status != 0 || a.Err == "" {
			t.Errorf("attempt to %s: status %d err %q, want a network error", a.URL, a.Status, a.Err)
		}
		if a.Retried == 0 && (a.Outcome != OutcomeRetry || a.NextDelay != wantBackoff[0]) {
			t.Errorf("first attempt to %s: %s after %s", a.URL, a.Outcome, a.NextDelay)
		}
	}
}

func TestRedirectIsAFailedAttempt(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, func(int, received) (int, http.Header, string) {
		return http.StatusFound, http.Header{"Location": {"/elsewhere"}}, ""
	})
	if status, _ := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", h("Upstash-Retries", "0"), "x"); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, srv, "dead", func() bool { return len(srv.DeadLetters()) == 1 })
	if n := len(dest.requests()); n != 1 {
		t.Errorf("destination got %d requests (the redirect was followed?)", n)
	}
}

func TestDelayAndNotBefore(t *testing.T) {
	t0 := manualNow()
	clock := NewManualClock(t0)
	srv := start(t, Options{Clock: clock})
	dest := newSink(t, always(200))
	path := "/v2/publish/" + dest.URL + "/hook"
	rawPublish(t, srv, path, h("Upstash-Delay", "10s"), "delayed")
	rawPublish(t, srv, path, http.Header{"Upstash-Delay": {"1h"}, "Upstash-Not-Before": {strconv.FormatInt(t0.Add(30*time.Second).Unix(), 10)}}, "not-before wins")
	rawPublish(t, srv, path, h("Upstash-Not-Before", strconv.FormatInt(t0.Add(-time.Hour).Unix(), 10)), "past: at once")

	atts := waitAttempts(t, srv, 1)
	if string(atts[0].Body) != "past: at once" || !atts[0].At.Equal(t0) {
		t.Fatalf("first attempt %q at %v", atts[0].Body, atts[0].At)
	}
	if n := clock.Advance(10*time.Second - time.Nanosecond); n != 0 {
		t.Fatalf("%d started before 10s", n)
	}
	if n := clock.Advance(time.Nanosecond); n != 1 {
		t.Fatalf("delayed message did not start at 10s")
	}
	atts = waitAttempts(t, srv, 2)
	if string(atts[1].Body) != "delayed" || !atts[1].At.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("second attempt %q at %v", atts[1].Body, atts[1].At)
	}
	if n := clock.Advance(20 * time.Second); n != 1 {
		t.Fatalf("not-before message did not start at 30s")
	}
	atts = waitAttempts(t, srv, 3)
	if string(atts[2].Body) != "not-before wins" || !atts[2].At.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("third attempt %q at %v", atts[2].Body, atts[2].At)
	}
	waitFor(t, srv, "idle", srv.Idle)
}

func TestCloseStopsDeliveries(t *testing.T) {
	clock := NewManualClock(manualNow())
	srv, err := New(Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	dest := newSink(t, always(500))
	if status, _ := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", nil, "x"); status != 200 {
		t.Fatal(status)
	}
	waitAttempts(t, srv, 1)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if clock.Waiting() != 0 {
		t.Errorf("the retry is still scheduled after Close")
	}
	clock.Advance(48 * time.Hour)
	if n := len(srv.Attempts()); n != 1 {
		t.Errorf("%d attempts after Close, want 1", n)
	}
	if _, err := http.Post(srv.URL()+"/v2/publish/"+dest.URL, "text/plain", nil); err == nil {
		t.Errorf("the server still answers after Close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := srv.WaitUntil(ctx, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitUntil = %v, want the context's error", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, opts := range []Options{{Scale: -1}, {MaxRetries: -1}, {Addr: "256.0.0.1:0"}} {
		if srv, err := New(opts); err == nil {
			srv.Close()
			t.Errorf("New(%+v) succeeded", opts)
		}
	}
}
