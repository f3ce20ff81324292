package qstashlocal

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/upstash/qstash-go"
)

func TestSDKPublishGivesOneSignedDelivery(t *testing.T) {
	srv := start(t, Options{})
	dest := newSink(t, always(200))
	client := sdk(t, srv)
	url := dest.URL + "/api/sync-google-ads"

	res, err := client.PublishJSON(qstash.PublishJSONOptions{
		Url:             url,
		Body:            map[string]any{"conversion_id": "c-1"},
		Retries:         qstash.RetryCount(3),
		DeduplicationId: "c-1",
	})
	if err != nil {
		t.Fatalf("PublishJSON: %v", err)
	}
	if !strings.HasPrefix(res.MessageId, "msg_") || res.Deduplicated {
		t.Fatalf("answer = %+v, want a msg_ id, not deduplicated", res)
	}
	waitFor(t, srv, "idle", srv.Idle)

	reqs := dest.requests()
	if len(reqs) != 1 {
		t.Fatalf("destination got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.URL != url || r.Body != `{"conversion_id":"c-1"}` {
		t.Errorf("delivery = %s %s %q", r.Method, r.URL, r.Body)
	}
	for name, want := range map[string]string{
		"Content-Type":       "application/json",
		"User-Agent":         "Upstash-QStash",
		"Upstash-Message-Id": res.MessageId,
		"Upstash-Retried":    "0",
		"Upstash-Caller-Ip":  "127.0.0.1",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	sig := r.Header.Get("Upstash-Signature")
	receiver := qstash.NewReceiver(srv.CurrentSigningKey(), srv.NextSigningKey())
	if err := receiver.Verify(qstash.VerifyOptions{Signature: sig, Body: r.Body, Url: url}); err != nil {
		t.Fatalf("SDK receiver refuses the delivery: %v", err)
	}

	// The claims, exactly.
	var c SignatureClaims
	if _, err := jwt.ParseWithClaims(sig, &c, func(tok *jwt.Token) (any, error) {
		if tok.Method != jwt.SigningMethodHS256 {
			return nil, errors.New("not HS256")
		}
		return []byte(srv.CurrentSigningKey()), nil
	}); err != nil {
		t.Fatalf("parse signature: %v", err)
	}
	if c.Issuer != "Upstash" || c.Subject != url || c.ID == "" || len(c.Audience) != 0 {
		t.Errorf("claims iss=%q sub=%q jti=%q aud=%v", c.Issuer, c.Subject, c.ID, c.Audience)
	}
	if c.Body != BodyHash([]byte(r.Body)) || strings.Contains(c.Body, "=") {
		t.Errorf("body claim %q, want %q without padding", c.Body, BodyHash([]byte(r.Body)))
	}
	if !c.NotBefore.Equal(c.IssuedAt.Time) || c.ExpiresAt.Sub(c.IssuedAt.Time) != 5*time.Minute {
		t.Errorf("iat=%v nbf=%v exp=%v, want nbf=iat and exp=iat+5m", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}

	pubs := srv.Publishes()
	if len(pubs) != 1 || pubs[0].Status != 200 || pubs[0].MessageID != res.MessageId ||
		pubs[0].Header.Get("Upstash-Retries") != "3" || pubs[0].Header.Get("Authorization") != "" {
		t.Errorf("publish record = %+v", pubs)
	}
	atts := srv.Attempts()
	if len(atts) != 1 || atts[0].Outcome != OutcomeDelivered || atts[0].Status != 200 || atts[0].Retried != 0 {
		t.Errorf("attempts = %+v", atts)
	}
	if m, _ := srv.Message(res.MessageId); m.State != StateDelivered || m.MaxRetries != 3 {
		t.Errorf("message = %+v", m)
	}
}

func TestSDKReceiverRefusesWhatWasNotSignedForIt(t *testing.T) {
	deliver := func(t *testing.T, clock Clock) (*Server, received) {
		srv := start(t, Options{Clock: clock})
		dest := newSink(t, always(200))
		if _, err := sdk(t, srv).PublishJSON(qstash.PublishJSONOptions{Url: dest.URL + "/hook", Body: map[string]any{"a": 1}}); err != nil {
			t.Fatal(err)
		}
		waitAttempts(t, srv, 1)
		return srv, dest.requests()[0]
	}
	other := "sig_" + randomID(28)
	cases := []struct {
		name      string
		clock     func() Clock
		receiver  func(srv *Server) *qstash.Receiver
		body, url func(r received) string
		tolerance time.Duration
		ok        bool
	}{
		{name: "as delivered", ok: true},
		{name: "tampered body", body: func(r received) string { return r.Body + " " }},
		{name: "other body", body: func(received) string { return `{"a":2}` }},
		{name: "wrong url", url: func(r received) string { return r.URL + "x" }},
		{name: "wrong keys", receiver: func(*Server) *qstash.Receiver { return qstash.NewReceiver(other, other) }},
		{name: "expired token", clock: func() Clock { return NewManualClock(time.Now().Add(-6 * time.Minute)) }},
		{name: "expired token within tolerance", clock: func() Clock { return NewManualClock(time.Now().Add(-6 * time.Minute)) }, tolerance: 2 * time.Minute, ok: true},
		{name: "not yet valid", clock: func() Clock { return NewManualClock(time.Now().Add(time.Minute)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var clock Clock
			if tc.clock != nil {
				clock = tc.clock()
			}
			srv, r := deliver(t, clock)
			receiver := qstash.NewReceiver(srv.CurrentSigningKey(), srv.NextSigningKey())
			if tc.receiver != nil {
				receiver = tc.receiver(srv)
			}
			body, url := r.Body, r.URL
			if tc.body != nil {
				body = tc.body(r)
			}
			if tc.url != nil {
				url = tc.url(r)
			}
			err := receiver.Verify(qstash.VerifyOptions{Signature: r.Header.Get("Upstash-Signature"), Body: body, Url: url, Tolerance: tc.tolerance})
			if tc.ok && err != nil {
				t.Fatalf("Verify: %v, want success", err)
			}
			if !tc.ok && !errors.Is(err, qstash.ErrInvalidSignature) {
				t.Fatalf("Verify: %v, want ErrInvalidSignature", err)
			}
		})
	}
}

func TestSigningKeyRotation(t *testing.T) {
	srv := start(t, Options{CurrentSigningKey: "sig_current0", NextSigningKey: "sig_next0"})
	dest := newSink(t, always(200))
	client := sdk(t, srv)
	publish := func() received {
		t.Helper()
		n := len(dest.requests())
		if _, err := client.PublishJSON(qstash.PublishJSONOptions{Url: dest.URL + "/hook", Body: map[string]any{"n": n}}); err != nil {
			t.Fatal(err)
		}
		waitAttempts(t, srv, n+1)
		return dest.requests()[n]
	}
	verify := func(r received, current, next string) error {
		return qstash.NewReceiver(current, next).Verify(qstash.VerifyOptions{Signature: r.Header.Get("Upstash-Signature"), Body: r.Body, Url: r.URL})
	}

	keys, err := client.Keys().Get()
	if err != nil || keys.Current != "sig_current0" || keys.Next != "sig_next0" {
		t.Fatalf("Keys().Get() = %+v, %v", keys, err)
	}
	first := publish()
	if err := verify(first, "sig_current0", "sig_next0"); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	rotated, err := client.Keys().Rotate()
	if err != nil || rotated.Current != "sig_next0" || rotated.Next == "sig_next0" || rotated.Next == "" {
		t.Fatalf("Keys().Rotate() = %+v, %v; want next0 current and a new next", rotated, err)
	}
	if srv.CurrentSigningKey() != rotated.Current || srv.NextSigningKey() != rotated.Next {
		t.Fatalf("server keys %q %q, SDK saw %+v", srv.CurrentSigningKey(), srv.NextSigningKey(), rotated)
	}
	second := publish()
	if err := verify(second, "sig_current0", "sig_next0"); err != nil {
		t.Errorf("a receiver holding the old current/next refuses a delivery signed with the new current: %v", err)
	}
	if err := verify(second, rotated.Current, rotated.Next); err != nil {
		t.Errorf("a receiver holding the new keys refuses: %v", err)
	}
	if err := verify(second, "sig_current0", "sig_current0"); err == nil {
		t.Errorf("the delivery after rotation is still signed with the old current key")
	}

	cur, next := srv.RotateSigningKeys()
	if cur != rotated.Next || next == rotated.Next {
		t.Fatalf("RotateSigningKeys = %q %q after %+v", cur, next, rotated)
	}
	third := publish()
	if err := verify(third, "sig_current0", "sig_next0"); !errors.Is(err, qstash.ErrInvalidSignature) {
		t.Errorf("two rotations later the first keys still verify: %v", err)
	}
	if err := verify(third, cur, next); err != nil {
		t.Errorf("after the second rotation: %v", err)
	}
}

func TestSDKSeesAuthAndInputErrors(t *testing.T) {
	srv := start(t, Options{})
	t.Setenv("QSTASH_URL", "")
	bad := qstash.NewClientWith(qstash.Options{Url: srv.URL(), Token: "wrong"})
	if _, err := bad.PublishJSON(qstash.PublishJSONOptions{Url: "http://127.0.0.1:1/x", Body: map[string]any{}}); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("wrong token: err = %v, want the 401's error", err)
	}
	good := sdk(t, srv)
	if _, err := good.PublishJSON(qstash.PublishJSONOptions{Url: "not-a-url", Body: map[string]any{}}); err == nil || !strings.Contains(err.Error(), "invalid destination url") {
		t.Errorf("bad destination: err = %v", err)
	}
	if _, err := good.PublishJSON(qstash.PublishJSONOptions{Url: "http://127.0.0.1:1/x", Body: map[string]any{}, Retries: qstash.RetryCount(DefaultMaxRetries + 1)}); err == nil || !strings.Contains(err.Error(), "Upstash-Retries") {
		t.Errorf("retries past the limit: err = %v", err)
	}
	if _, err := good.PublishJSON(qstash.PublishJSONOptions{Url: "http://127.0.0.1:1/x", Body: map[string]any{}, Callback: "http://127.0.0.1:1/cb"}); err == nil || !strings.Contains(err.Error(), "Upstash-Callback is not supported") {
		t.Errorf("success callback: err = %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages accepted, want 0", n)
	}
	statuses := []int{}
	for _, p := range srv.Publishes() {
		statuses = append(statuses, p.Status)
	}
	if want := []int{401, 400, 400, 400}; !slices.Equal(statuses, want) {
		t.Errorf("recorded statuses %v, want %v", statuses, want)
	}
}
