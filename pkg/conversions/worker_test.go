package conversions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
)

// TestEveryOutcomeMapsToItsStatusAndAnswer: each class of the clients'
// outcomes, as Google's fakes produce them, gives the row's status and error
// class and the HTTP answer QStash acts on.
func TestEveryOutcomeMapsToItsStatusAndAnswer(t *testing.T) {
	type want struct {
		http       int
		retryAfter string // "" none, "*" any
		status     string
		class      string
		code       string
		uploads    int
	}
	cases := []struct {
		name        string
		destination string
		visitor     bool
		retried     int
		setup       func(l *loop)
		want        want
	}{
		{"uploaded", "google_ads", true, 0, nil, want{200, "", "uploaded", "", "", 1}},
		{"already uploaded (order id)", "google_ads", true, 0, func(l *loop) {
			l.ads.FailClick("Cj0KCQ-case", googleadstest.RowError{Code: "ORDER_ID_ALREADY_IN_USE"})
		}, want{200, "", "uploaded", "", "ORDER_ID_ALREADY_IN_USE", 0}},
		{"already uploaded (click)", "google_ads", true, 0, func(l *loop) {
			l.ads.FailClick("Cj0KCQ-case", googleadstest.RowError{Code: "CLICK_CONVERSION_ALREADY_EXISTS"})
		}, want{200, "", "uploaded", "", "CLICK_CONVERSION_ALREADY_EXISTS", 0}},
		{"permanent: expired click", "google_ads", true, 0, func(l *loop) {
			l.ads.FailClick("Cj0KCQ-case", googleadstest.RowError{Code: "EXPIRED_EVENT"})
		}, want{200, "", "failed", "permanent", "EXPIRED_EVENT", 0}},
		{"config error: no such action", "google_ads", true, 0, func(l *loop) {
			if _, err := l.pool.Exec(context.Background(), `UPDATE sites SET google_ads_conversion_action = 'No such action'`); err != nil {
				l.t.Fatal(err)
			}
		}, want{200, "", "failed", "config_error", "NO_CONVERSION_ACTION_FOUND", 0}},
		{"config error: customer not reachable", "google_ads", true, 0, func(l *loop) {
			if _, err := l.pool.Exec(context.Background(), `UPDATE sites SET google_ads_customer_id = '9999999999', google_ads_conversion_action = '987'`); err != nil {
				l.t.Fatal(err)
			}
		}, want{200, "", "failed", "config_error", "USER_PERMISSION_DENIED", 0}},
		{"config error: refresh token revoked", "google_ads", true, 0, func(l *loop) { l.ads.RevokeRefreshToken() },
			want{200, "", "failed", "config_error", "invalid_grant", 0}},
		{"config error: destination cleared", "google_ads", true, 0, func(l *loop) {
			if _, err := l.pool.Exec(context.Background(), `UPDATE sites SET google_ads_customer_id = NULL, google_ads_conversion_action = NULL`); err != nil {
				l.t.Fatal(err)
			}
		}, want{200, "", "failed", "config_error", conversions.CodeNotConfigured, 0}},
		{"retry later: too recent", "google_ads", true, 0, func(l *loop) {
			l.ads.FailClick("Cj0KCQ-case", googleadstest.RowError{Code: "TOO_RECENT_EVENT"})
		}, want{503, "21600", "published", "retry_later", "TOO_RECENT_EVENT", 0}},
		{"retry later: quota with Retry-After", "google_ads", true, 0, func(l *loop) {
			l.ads.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 429, RetryAfter: "120"})
		}, want{503, "120", "published", "retry_later", "RESOURCE_EXHAUSTED", 0}},
		{"retry later: 500", "google_ads", true, 0, func(l *loop) {
			l.ads.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 500})
		}, want{503, "*", "published", "retry_later", "INTERNAL_ERROR", 0}},
		{"retry later on QStash's last retry: back to pending", "google_ads", true, 5, func(l *loop) {
			l.ads.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 503})
		}, want{503, "*", "pending", "retry_later", "TRANSIENT_ERROR", 0}},
		{"ga4 sent", "ga4", true, 0, nil, want{200, "", "uploaded", "", "", 0}},
		{"ga4 refused: no visitor id", "ga4", false, 0, nil, want{200, "", "failed", "permanent", conversions.CodeGA4Refused, 0}},
		{"ga4 unavailable", "ga4", true, 0, func(l *loop) { l.ga4.FailNext(503, "45") },
			want{503, "45", "published", "retry_later", conversions.CodeGA4Unavailable, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := newLoop(t, loopOptions{ga4: true})
			if c.setup != nil {
				c.setup(l)
			}
			id := l.insertConversion(t, c.destination, "gclid", "Cj0KCQ-case", time.Now().Add(-time.Hour), c.visitor)
			d := l.signed(id)
			d.retried = c.retried
			a := l.deliver(t, d)
			if a.status != c.want.http || (c.want.retryAfter == "*" && a.retryAfter == "") || (c.want.retryAfter != "*" && a.retryAfter != c.want.retryAfter) {
				t.Errorf("answer %d %v Retry-After %q, want %d Retry-After %q", a.status, a.body, a.retryAfter, c.want.http, c.want.retryAfter)
			}
			r := l.rows(t)[0]
			if r.Status != c.want.status || r.Class != c.want.class || r.Code != c.want.code || r.Attempts != 1 || r.Claimed {
				t.Errorf("row %+v, want status %s, class %q, code %q, one attempt, no claim", r, c.want.status, c.want.class, c.want.code)
			}
			if (c.want.class == "retry_later") != (r.RetryAfter != nil) {
				t.Errorf("retry_after %v for class %q", r.RetryAfter, r.Class)
			}
			if n := len(l.ads.Uploads()); n != c.want.uploads {
				t.Errorf("%d Google Ads uploads, want %d", n, c.want.uploads)
			}
			if c.destination == "ga4" && c.want.status == "uploaded" {
				ev := l.ga4.Events()
				if len(ev) != 1 || ev[0].Params["value"] != 95.0 || ev[0].Params["currency"] != "TRY" || ev[0].Params["gclid"] != "Cj0KCQ-case" {
					t.Errorf("GA4 events %+v", ev)
				}
			}
			// A finished row answers 200 to QStash's next delivery and is not sent again.
			if c.want.http == 200 {
				again := l.deliver(t, l.signed(id))
				if again.status != 200 || again.body["outcome"] != "already_"+c.want.status {
					t.Errorf("repeat: %d %v", again.status, again.body)
				}
				if n := len(l.ads.Uploads()); n != c.want.uploads {
					t.Errorf("a repeat uploaded again: %d uploads", n)
				}
			}
		})
	}
}

// TestConsentGoesWithTheUpload: the site's consent is sent as adUserData;
// unspecified sends none.
func TestConsentGoesWithTheUpload(t *testing.T) {
	t.Parallel()
	for _, consent := range []string{"granted", "denied"} {
		l := newLoop(t, loopOptions{})
		if _, err := l.pool.Exec(context.Background(), `UPDATE sites SET ads_consent = $1`, consent); err != nil {
			t.Fatal(err)
		}
		id := l.insertConversion(t, "google_ads", "wbraid", "Cj0KCQ-consent", time.Now().Add(-time.Hour), true)
		if a := l.deliver(t, l.signed(id)); a.status != 200 {
			t.Fatalf("%s: %d %v", consent, a.status, a.body)
		}
		ups := l.ads.Uploads()
		if len(ups) != 1 || ups[0].Conversion.Consent == nil || ups[0].Conversion.Consent.AdUserData != strings.ToUpper(consent) || ups[0].Conversion.Wbraid != "Cj0KCQ-consent" {
			t.Fatalf("%s: uploads %+v", consent, ups)
		}
	}
}

// TestSignatureRefusalsTouchNothing: a delivery without a valid signature
// for this URL and body is answered 401 and neither reads nor changes the
// row nor calls Google; the next signing key is accepted (key rotation).
func TestSignatureRefusalsTouchNothing(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	id := l.insertConversion(t, "google_ads", "gclid", "Cj0KCQ-sig", time.Now().Add(-time.Hour), true)
	var before time.Time
	if err := l.pool.QueryRow(context.Background(), `SELECT updated_at FROM conversions`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	good := l.signed(id)
	tampered := good
	tampered.sign = false
	cases := []struct {
		name   string
		d      delivery
		header func(*http.Request)
		status int
		err    string
	}{
		{"no signature", func() delivery { d := good; d.sign = false; return d }(), nil, 401, "missing_signature"},
		{"tampered body", good, nil, 401, "invalid_signature"},
		{"wrong key", func() delivery { d := good; d.key = "sig_not-the-key"; return d }(), nil, 401, "invalid_signature"},
		{"wrong url", func() delivery { d := good; d.url = "https://elsewhere.example/api/sync-google-ads"; return d }(), nil, 401, "invalid_signature"},
		{"expired token", func() delivery { d := good; d.at = time.Now().Add(-6 * time.Minute); return d }(), nil, 401, "invalid_signature"},
		{"not yet valid", func() delivery { d := good; d.at = time.Now().Add(2 * time.Minute); return d }(), nil, 401, "invalid_signature"},
		{"garbage signature", good, func(r *http.Request) { r.Header.Set("Upstash-Signature", "not.a.jwt") }, 401, "invalid_signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a answer
			switch {
			case c.name == "tampered body":
				a = l.deliverTampered(t, good, fmt.Sprintf(`{"conversion_id":%q }`, id))
			case c.header != nil:
				a = l.deliverWith(t, c.d, c.header)
			default:
				a = l.deliver(t, c.d)
			}
			if a.status != c.status || a.body["error"] != c.err {
				t.Fatalf("answer %d %v, want %d %s", a.status, a.body, c.status, c.err)
			}
		})
	}
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		req, _ := http.NewRequest(method, l.workerURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: %d Allow %q", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	var after time.Time
	var attempts int
	if err := l.pool.QueryRow(context.Background(), `SELECT updated_at, attempts FROM conversions`).Scan(&after, &attempts); err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) || attempts != 0 || len(l.ads.Requests()) != 0 {
		t.Fatalf("a refused delivery touched something: updated %s → %s, %d attempts, %d Google requests", before, after, attempts, len(l.ads.Requests()))
	}
	// The next key (after QStash rotates) is accepted too.
	next := good
	next.key = l.q.NextSigningKey()
	if a := l.deliver(t, next); a.status != 200 || a.body["outcome"] != "uploaded" {
		t.Fatalf("next key: %d %v", a.status, a.body)
	}
}

// TestBadDeliveriesAreRefusedWithAReason: a signed body that is not ours,
// an id that is not a UUID, an unknown conversion, a body over the limit.
func TestBadDeliveriesAreRefusedWithAReason(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	for _, c := range []struct {
		body   string
		status int
		err    string
	}{
		{`not json`, 400, "invalid_body"},
		{`{"conversion_id":"nope"}`, 400, "invalid_conversion_id"},
		{`{"conversion_id":"00000000-0000-4000-8000-000000000000"}`, 404, "unknown_conversion"},
		{`{"conversion_id":"00000000-0000-4000-8000-000000000000","pad":"` + strings.Repeat("x", conversions.MaxDeliveryBytes) + `"}`, 413, "body_too_large"},
	} {
		d := l.signed("x")
		d.body = c.body
		if a := l.deliver(t, d); a.status != c.status || a.body["error"] != c.err {
			t.Errorf("%.40s: %d %v, want %d %s", c.body, a.status, a.body, c.status, c.err)
		}
	}
	// Exactly at the limit is read (and then judged on its content).
	body := `{"conversion_id":"00000000-0000-4000-8000-000000000000","pad":"`
	body += strings.Repeat("x", conversions.MaxDeliveryBytes-len(body)-2) + `"}`
	d := l.signed("x")
	d.body = body
	if a := l.deliver(t, d); len(body) != conversions.MaxDeliveryBytes || a.status != 404 {
		t.Errorf("a body of exactly %d bytes: %d %v", len(body), a.status, a.body)
	}
}

// TestWithoutCredentialsTheWorkerRunsDry: it logs the exact request the
// client would send and marks the row uploaded, dry_run.
func TestWithoutCredentialsTheWorkerRunsDry(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{dry: true})
	at := time.Date(2026, 11, 20, 9, 30, 5, 0, time.UTC)
	id := l.insertConversion(t, "google_ads", "gclid", "Cj0KCQ-dry", at, true)
	a := l.deliver(t, l.signed(id))
	if a.status != 200 || a.body["outcome"] != "uploaded" || a.body["dry_run"] != true {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	if r := l.rows(t)[0]; r.Status != "uploaded" || !r.DryRun || r.UploadedAt == nil {
		t.Fatalf("row %+v", r)
	}
	if n := len(l.ads.Requests()); n != 0 {
		t.Fatalf("a dry run sent %d requests to Google", n)
	}
	lines := l.logs.lines("sync-google-ads: dry run, no Google Ads credentials: this request was not sent")
	if len(lines) != 1 {
		t.Fatalf("dry-run log lines %v\n%s", lines, l.logs.String())
	}
	req, _ := json.Marshal(lines[0]["request"])
	var p struct {
		URL      string `json:"url"`
		Body     googleadstest.UploadRequest
		Searches []json.RawMessage `json:"searches"`
	}
	if err := json.Unmarshal(req, &p); err != nil {
		t.Fatal(err)
	}
	c := p.Body.Conversions
	if !strings.HasSuffix(p.URL, "/v26/customers/1234567890:uploadClickConversions") || !p.Body.PartialFailure || len(c) != 1 ||
		c[0].Gclid != "Cj0KCQ-dry" || c[0].OrderID != id || c[0].ConversionDateTime != "2026-11-20 12:30:05+03:00" ||
		*c[0].ConversionValue != 95 || c[0].CurrencyCode != "TRY" || len(p.Searches) != 1 {
		t.Fatalf("logged request %s", req)
	}
}
