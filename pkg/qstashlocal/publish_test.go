package qstashlocal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upstash/qstash-go"
)

func TestPublishAnswerShape(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	status, body := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", http.Header{"Content-Type": {"text/plain"}}, "hello")
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	id, _ := got["messageId"].(string)
	if len(got) != 2 || !strings.HasPrefix(id, "msg_") || got["deduplicated"] != false {
		t.Errorf("answer %s, want exactly messageId and deduplicated:false", body)
	}
	waitAttempts(t, srv, 1)
	if r := dest.requests()[0]; r.Body != "hello" || r.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("delivery %+v", r)
	}
}

func TestBadTokenIs401(t *testing.T) {
	srv := start(t, Options{Token: "right"})
	dest := newSink(t, always(200))
	path := "/v2/publish/" + dest.URL + "/hook"
	for _, auth := range []string{"", "Bearer wrong", "Bearer righ", "Bearer right2", "Bearer", "bearer right", "Basic right", "right"} {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		} else {
			h["Authorization"] = nil
		}
		status, body := rawPublish(t, srv, path, h, "{}")
		var e struct{ Error string }
		if status != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("Authorization %q: %d %s, want 401 {\"error\":...}", auth, status, body)
		}
	}
	if status, _ := rawPublish(t, srv, path, http.Header{"Authorization": {"Bearer right"}}, "{}"); status != 200 {
		t.Errorf("right token: %d", status)
	}
	// The other endpoints are guarded too.
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v2/keys", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET /v2/keys without token: %d", resp.StatusCode)
	}
	waitFor(t, srv, "idle", srv.Idle)
	if n := len(dest.requests()); n != 1 {
		t.Errorf("%d deliveries, want 1 (only the authorized publish)", n)
	}
}

func TestBadInputIs4xx(t *testing.T) {
	start0 := manualNow()
	clock := NewManualClock(start0)
	srv := start(t, Options{Clock: clock, MaxBodyBytes: 100})
	dest := "http://127.0.0.1:1/hook" // never reached: every case is refused or delayed
	inAWeek := strconv.FormatInt(start0.Add(DefaultMaxDelay).Unix(), 10)
	pastAWeek := strconv.FormatInt(start0.Add(DefaultMaxDelay+time.Second).Unix(), 10)
	cases := []struct {
		name   string
		path   string
		header http.Header
		body   string
		status int
		errHas string
	}{
		{name: "empty destination", path: "/v2/publish/", status: 400, errHas: "invalid destination url"},
		{name: "no destination", path: "/v2/publish", status: 400, errHas: "invalid destination url"},
		{name: "not a url", path: "/v2/publish/not-a-url", status: 400, errHas: "invalid destination url"},
		{name: "url group name", path: "/v2/publish/my-group", status: 400, errHas: "URL groups"},
		{name: "ftp", path: "/v2/publish/ftp://127.0.0.1/x", status: 400, errHas: "http:// or https://"},
		{name: "no host", path: "/v2/publish/http://", status: 400, errHas: "no host"},
		{name: "no host, port only", path: "/v2/publish/http://:80/x", status: 400, errHas: "no host"},
		{name: "retries not a number", header: h("Upstash-Retries", "abc"), status: 400, errHas: "Upstash-Retries"},
		{name: "retries negative", header: h("Upstash-Retries", "-1"), status: 400, errHas: "Upstash-Retries"},
		{name: "retries at the limit", header: h("Upstash-Retries", "5"), status: 200},
		{name: "retries past the limit", header: h("Upstash-Retries", "6"), status: 400, errHas: "from 0 to 5"},
		{name: "retries zero", header: h("Upstash-Retries", "0"), status: 200},
		{name: "delay without unit", header: h("Upstash-Delay", "10"), status: 400, errHas: "Upstash-Delay"},
		{name: "delay bad unit", header: h("Upstash-Delay", "10x"), status: 400, errHas: "Upstash-Delay"},
		{name: "delay negative", header: h("Upstash-Delay", "-5s"), status: 400, errHas: "Upstash-Delay"},
		{name: "delay fraction", header: h("Upstash-Delay", "1.5h"), status: 400, errHas: "Upstash-Delay"},
		{name: "delay overflow", header: h("Upstash-Delay", "99999999999999999999d"), status: 400, errHas: "Upstash-Delay"},
		{name: "delay 7d (the limit)", header: h("Upstash-Delay", "7d"), status: 200},
		{name: "delay 604800s (the limit)", header: h("Upstash-Delay", "604800s"), status: 200},
		{name: "delay past the limit", header: h("Upstash-Delay", "604801s"), status: 400, errHas: "maximum delay"},
		{name: "delay 8d", header: h("Upstash-Delay", "8d"), status: 400, errHas: "maximum delay"},
		{name: "not-before not a number", header: h("Upstash-Not-Before", "tomorrow"), status: 400, errHas: "Upstash-Not-Before"},
		{name: "not-before negative", header: h("Upstash-Not-Before", "-1"), status: 400, errHas: "Upstash-Not-Before"},
		{name: "not-before at the limit", header: h("Upstash-Not-Before", inAWeek), status: 200},
		{name: "not-before past the limit", header: h("Upstash-Not-Before", pastAWeek), status: 400, errHas: "maximum delay"},
		{name: "method TRACE", header: h("Upstash-Method", "TRACE"), status: 400, errHas: "Upstash-Method"},
		{name: "timeout zero", header: h("Upstash-Timeout", "0s"), status: 400, errHas: "Upstash-Timeout"},
		{name: "timeout at the limit", header: h("Upstash-Timeout", "30s"), status: 200},
		{name: "timeout past the limit", header: h("Upstash-Timeout", "31s"), status: 400, errHas: "maximum of 30s"},
		{name: "failure callback not a url", header: h("Upstash-Failure-Callback", "nope"), status: 400, errHas: "Upstash-Failure-Callback"},
		{name: "content dedup yes", header: h("Upstash-Content-Based-Deduplication", "yes"), status: 400, errHas: "true or false"},
		{name: "success callback", header: h("Upstash-Callback", "http://127.0.0.1:1/cb"), status: 400, errHas: "not supported"},
		{name: "cron", header: h("Upstash-Cron", "* * * * *"), status: 400, errHas: "not supported"},
		{name: "retry delay expression", header: h("Upstash-Retry-Delay", "1000"), status: 400, errHas: "not supported"},
		{name: "forward without a name", header: h("Upstash-Forward-", "x"), status: 400, errHas: "no header name"},
		{name: "body at the limit", body: strings.Repeat("a", 100), status: 200},
		{name: "body past the limit", body: strings.Repeat("a", 101), status: 413, errHas: "100 bytes"},
	}
	accepted := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v2/publish/" + dest
			}
			header := tc.header.Clone()
			if header == nil {
				header = http.Header{}
			}
			if _, ok := header["Upstash-Delay"]; !ok && tc.status == 200 {
				header.Set("Upstash-Delay", "1d") // keep accepted messages from being attempted
			}
			status, body := rawPublish(t, srv, path, header, tc.body)
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			if status == 200 {
				accepted++
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tc.errHas) {
				t.Errorf("body %s, want {\"error\": \"…%s…\"}", body, tc.errHas)
			}
		})
	}
	if n := len(srv.Messages()); n != accepted {
		t.Errorf("%d messages accepted, want %d", n, accepted)
	}
	if n := len(srv.Attempts()); n != 0 {
		t.Errorf("%d attempts, want none", n)
	}

	// Other methods and paths.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v2/publish/" + dest},
		{"PUT", "/v2/publish/" + dest},
		{"POST", "/v2/enqueue/q/" + dest},
		{"POST", "/v2/batch"},
		{"GET", "/v2/dlq"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL()+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 404
		if strings.HasPrefix(tc.path, "/v2/publish/") {
			want = 405
		}
		if resp.StatusCode != want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, want)
		}
	}
}

func h(name, value string) http.Header { return http.Header{name: {value}} }

func TestDestinationForms(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	target := dest.URL + "/hook?a=1&b=two%20words"
	for _, path := range []string{
		"/v2/publish/" + target,                  // as the SDK sends it
		"/v2/publish/" + url.QueryEscape(target), // encodeURIComponent
	} {
		if status, body := rawPublish(t, srv, path, nil, "x"); status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
	atts := waitAttempts(t, srv, 2)
	receiver := qstash.NewReceiver(srv.CurrentSigningKey(), srv.NextSigningKey())
	for i, r := range dest.requests() {
		if r.URL != target {
			t.Errorf("delivery %d went to %s, want %s", i, r.URL, target)
		}
		if err := receiver.Verify(qstash.VerifyOptions{Signature: r.Header.Get("Upstash-Signature"), Body: r.Body, Url: target}); err != nil {
			t.Errorf("delivery %d: sub is not the destination: %v", i, err)
		}
	}
	for _, a := range atts {
		if a.URL != target {
			t.Errorf("attempt URL %s", a.URL)
		}
	}
}

func TestForwardedHeadersAndMethod(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	_, err := sdk(t, srv).PublishJSON(qstash.PublishJSONOptions{
		Url:    dest.URL + "/hook",
		Body:   map[string]any{"k": "v"},
		Method: "PUT",
		Headers: map[string]string{
			"X-Trace":                       "t-1",
			"Upstash-Forward-Authorization": "Bearer inner",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Several values of one forwarded header, without the SDK.
	status, body := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook",
		http.Header{"Upstash-Forward-X-Multi": {"one", "two"}, "Upstash-Forward-Upstash-Message-Id": {"forged"}}, "raw")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	waitAttempts(t, srv, 2)
	reqs := dest.requests()
	byBody := map[string]received{}
	for _, r := range reqs {
		byBody[r.Body] = r
	}
	r := byBody[`{"k":"v"}`]
	if r.Method != "PUT" || r.Header.Get("X-Trace") != "t-1" || r.Header.Get("Authorization") != "Bearer inner" {
		t.Errorf("first delivery %s, headers %v", r.Method, r.Header)
	}
	for _, rr := range reqs {
		for name := range rr.Header {
			if strings.HasPrefix(name, "Upstash-Forward") {
				t.Errorf("%s reached the destination", name)
			}
		}
	}
	r = byBody["raw"]
	if got := r.Header.Values("X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("X-Multi = %v", got)
	}
	if r.Header.Get("Upstash-Message-Id") == "forged" {
		t.Errorf("a forwarded header overrode Upstash-Message-Id")
	}
}

func TestDeduplicationWindow(t *testing.T) {
	t0 := manualNow()
	clock := NewManualClock(t0)
	srv := start(t, Options{Clock: clock})
	dest := newSink(t, always(200))
	client := sdk(t, srv)
	publish := func(body string) qstash.PublishOrEnqueueResponse {
		t.Helper()
		res, err := client.PublishJSON(qstash.PublishJSONOptions{Url: dest.URL + "/hook", Body: map[string]any{"b": body}, DeduplicationId: "conv-1"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := publish("first")
	waitAttempts(t, srv, 1)

	clock.Advance(DedupWindow - time.Second)
	dup := publish("second")
	if dup.MessageId != first.MessageId || !dup.Deduplicated {
		t.Errorf("within the window: %+v, want %s deduplicated", dup, first.MessageId)
	}
	// The same answer without the SDK: 202, deduplicated true.
	status, body := rawPublish(t, srv, "/v2/publish/"+dest.URL+"/hook", h("Upstash-Deduplication-Id", "conv-1"), "third")
	if status != http.StatusAccepted || body != fmt.Sprintf(`{"messageId":%q,"deduplicated":true}`+"\n", first.MessageId) {
		t.Errorf("raw duplicate: %d %s", status, body)
	}

	clock.Advance(time.Second) // the window is over, counted from the first publish
	after := publish("fourth")
	if after.MessageId == first.MessageId || after.Deduplicated {
		t.Errorf("after the window: %+v, want a new message", after)
	}
	waitAttempts(t, srv, 2)
	waitFor(t, srv, "idle", srv.Idle)
	reqs := dest.requests()
	if len(reqs) != 2 || reqs[0].Body != `{"b":"first"}` || reqs[1].Body != `{"b":"fourth"}` {
		t.Errorf("deliveries %+v, want first and fourth only", reqs)
	}
	var dedupFlags []bool
	for _, p := range srv.Publishes() {
		dedupFlags = append(dedupFlags, p.Deduplicated)
	}
	if fmt.Sprint(dedupFlags) != "[false true true false]" {
		t.Errorf("recorded dedup flags %v", dedupFlags)
	}
}

func TestContentBasedDeduplication(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	path := "/v2/publish/" + dest.URL + "/hook"
	pub := func(body, trace string) string {
		t.Helper()
		hdr := http.Header{"Upstash-Content-Based-Deduplication": {"true"}, "Content-Type": {"application/json"}}
		if trace != "" {
			hdr.Set("Upstash-Forward-X-Trace", trace)
		}
		status, answer := rawPublish(t, srv, path, hdr, body)
		if status != 200 && status != 202 {
			t.Fatalf("%d %s", status, answer)
		}
		var a publishAnswer
		_ = json.Unmarshal([]byte(answer), &a)
		return a.MessageID
	}
	a := pub(`{"x":1}`, "")
	if b := pub(`{"x":1}`, ""); b != a {
		t.Errorf("same content: %s then %s", a, b)
	}
	if c := pub(`{"x":2}`, ""); c == a {
		t.Errorf("other body deduplicated")
	}
	if d := pub(`{"x":1}`, "t"); d == a {
		t.Errorf("other forwarded header deduplicated")
	}
	waitFor(t, srv, "idle", func() bool { return len(srv.Attempts()) == 3 && srv.Idle() })
	if n := len(dest.requests()); n != 3 {
		t.Errorf("%d deliveries, want 3", n)
	}
}

func TestConcurrentPublishesAreEachDeliveredOnce(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	client := sdk(t, srv)
	const n, workers = 200, 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				res, err := client.PublishJSON(qstash.PublishJSONOptions{Url: dest.URL + "/hook", Body: map[string]any{"i": i}, DeduplicationId: fmt.Sprint("c-", i)})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = res.MessageId
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, srv, "all delivered", func() bool { return len(srv.Attempts()) >= n && srv.Idle() })

	seen := map[string]int{}
	byID := map[string]string{}
	for _, r := range dest.requests() {
		seen[r.Body]++
		byID[r.Header.Get("Upstash-Message-Id")] = r.Body
	}
	for i := range n {
		body := fmt.Sprintf(`{"i":%d}`, i)
		if seen[body] != 1 {
			t.Errorf("%s delivered %d times", body, seen[body])
		}
		if byID[ids[i]] != body {
			t.Errorf("message %s carried %q, want %s", ids[i], byID[ids[i]], body)
		}
	}
	if got := len(srv.Attempts()); got != n {
		t.Errorf("%d attempts, want %d", got, n)
	}
}

func TestConcurrentDuplicatesAreDeliveredOnce(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	path := "/v2/publish/" + dest.URL + "/hook"
	const n = 50
	statuses := make([]int, n)
	answers := make([]publishAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, body, err := post(srv, path, h("Upstash-Deduplication-Id", "same"), fmt.Sprint(i))
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = status
			_ = json.Unmarshal([]byte(body), &answers[i])
		})
	}
	wg.Wait()
	accepted := 0
	for i := range n {
		switch statuses[i] {
		case 200:
			accepted++
		case 202:
			if !answers[i].Deduplicated {
				t.Errorf("202 without deduplicated: %+v", answers[i])
			}
		default:
			t.Errorf("status %d", statuses[i])
		}
		if answers[i].MessageID != answers[0].MessageID {
			t.Errorf("answer %d has id %s, answer 0 %s", i, answers[i].MessageID, answers[0].MessageID)
		}
	}
	if accepted != 1 {
		t.Errorf("%d publishes accepted, want 1", accepted)
	}
	waitFor(t, srv, "idle", func() bool { return len(srv.Attempts()) >= 1 && srv.Idle() })
	if got := len(dest.requests()); got != 1 {
		t.Errorf("%d deliveries, want 1", got)
	}
}
