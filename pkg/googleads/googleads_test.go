package googleads_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the zones below must not depend on the machine

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/googleads"
	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
)

const (
	customer     = "1234567890"
	customerDash = "123-456-7890"
	actionName   = "Qualified lead"
	actionRes    = "customers/1234567890/conversionActions/987"
)

// clock is the injected clock shared by client and fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var start = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type env struct {
	srv   *googleadstest.Server
	c     *googleads.Client
	clock *clock
	cfg   googleads.Config
}

func setup(t *testing.T, edit ...func(*googleads.Config)) *env {
	t.Helper()
	clk := &clock{t: start}
	srv := googleadstest.NewServer(googleadstest.Options{Now: clk.Now})
	t.Cleanup(srv.Close)
	srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 987, Name: actionName})
	cfg := srv.ClientConfig()
	for _, e := range edit {
		e(&cfg)
	}
	c, err := googleads.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, c: c, clock: clk, cfg: cfg}
}

// conv is a conversion of a click made a day before start, converting an
// hour before start.
func conv(clickID, orderID string) googleads.Conversion {
	return googleads.Conversion{GCLID: clickID, Action: actionName, Time: start.Add(-time.Hour), Value: 150, Currency: "TRY", OrderID: orderID}
}

func upload(t *testing.T, e *env, convs ...googleads.Conversion) []googleads.Outcome {
	t.Helper()
	outs, err := e.c.UploadClickConversions(context.Background(), customerDash, convs)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(convs) {
		t.Fatalf("%d outcomes for %d conversions", len(outs), len(convs))
	}
	return outs
}

func wantStatus(t *testing.T, o googleads.Outcome, s googleads.Status, code string) {
	t.Helper()
	if o.Status != s || o.Code != code {
		t.Fatalf("outcome = %s %s (%q), want %s %s", o.Status, o.Code, o.Message, s, code)
	}
	if s != googleads.Uploaded && o.Message == "" {
		t.Fatalf("outcome %s %s has no message", o.Status, o.Code)
	}
}

func TestUploadSendsExactlyTheDocumentedRequest(t *testing.T) {
	e := setup(t, func(c *googleads.Config) {
		c.LoginCustomerID = "987-654-3210"
		c.DeveloperToken = "dev-t0ken"
	})
	e.srv.AddCustomer(googleadstest.Customer{ID: customer, ManagerID: "9876543210"})
	ist, _ := time.LoadLocation("Europe/Istanbul")
	c := conv("Cj0KCQiA-gclid_1", "lead-1")
	c.TimeZone = ist
	c.Consent = &googleads.Consent{AdUserData: "GRANTED"}
	c.Action = "987"
	outs := upload(t, e, c)
	wantStatus(t, outs[0], googleads.Uploaded, "")
	if outs[0].Action != actionRes {
		t.Errorf("Action = %q", outs[0].Action)
	}

	tok := e.srv.RequestsTo(googleadstest.EndpointToken)
	if len(tok) != 1 {
		t.Fatalf("%d token requests", len(tok))
	}
	f := tok[0].Form
	if f.Get("grant_type") != "refresh_token" || f.Get("client_id") != googleadstest.ClientID ||
		f.Get("client_secret") != googleadstest.ClientSecret || f.Get("refresh_token") != googleadstest.RefreshToken {
		t.Errorf("token form = %v", f)
	}
	ups := e.srv.RequestsTo(googleadstest.EndpointUpload)
	if len(ups) != 1 {
		t.Fatalf("%d upload requests", len(ups))
	}
	r := ups[0]
	if r.Path != "/v26/customers/1234567890:uploadClickConversions" {
		t.Errorf("path = %s", r.Path)
	}
	for h, want := range map[string]string{
		"Authorization":     "Bearer ya29.fake-access-1",
		"Content-Type":      "application/json",
		"Login-Customer-Id": "9876543210",
		"Developer-Token":   "dev-t0ken",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	want := `{"conversions":[{"gclid":"Cj0KCQiA-gclid_1","conversionAction":"customers/1234567890/conversionActions/987",` +
		`"conversionDateTime":"2026-11-20 14:00:00+03:00","conversionValue":150,"currencyCode":"TRY","orderId":"lead-1",` +
		`"consent":{"adUserData":"GRANTED"}}],"partialFailure":true,"validateOnly":false}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	if n := len(e.srv.RequestsTo(googleadstest.EndpointSearch)); n != 0 {
		t.Errorf("a numeric id cost %d searches", n)
	}
	if u := e.srv.Uploads(); len(u) != 1 || u[0].Conversion.Gclid != "Cj0KCQiA-gclid_1" {
		t.Errorf("fake stored %+v", u)
	}
}

func TestOptionalHeadersAreSentOnlyWhenConfigured(t *testing.T) {
	e := setup(t)
	upload(t, e, conv("gclid-1", "o1"))
	r := e.srv.RequestsTo(googleadstest.EndpointUpload)[0]
	for _, h := range []string{"login-customer-id", "developer-token"} {
		if _, ok := r.Header[http.CanonicalHeaderKey(h)]; ok {
			t.Errorf("%s sent without configuration", h)
		}
	}
}

func TestManagedAccountNeedsLoginCustomerID(t *testing.T) {
	e := setup(t)
	e.srv.AddCustomer(googleadstest.Customer{ID: customer, ManagerID: "9876543210"})
	outs := upload(t, e, googleads.Conversion{GCLID: "g1", Action: "987", Time: start, OrderID: "o"})
	wantStatus(t, outs[0], googleads.ConfigError, "USER_PERMISSION_DENIED")
}

func TestCustomerIDWithOrWithoutDashes(t *testing.T) {
	e := setup(t)
	for i, id := range []string{"123-456-7890", "1234567890", " 1234567890 "} {
		outs, err := e.c.UploadClickConversions(context.Background(), id, []googleads.Conversion{conv(fmt.Sprintf("g%d", i), fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, outs[0], googleads.Uploaded, "")
	}
	for _, r := range e.srv.RequestsTo(googleadstest.EndpointUpload) {
		if r.Path != "/v26/customers/1234567890:uploadClickConversions" {
			t.Errorf("path %s", r.Path)
		}
	}
	before := len(e.srv.Requests())
	for _, bad := range []string{"12345", "123-456-789a", "", "12345678901"} {
		outs, err := e.c.UploadClickConversions(context.Background(), bad, []googleads.Conversion{conv("g", "o")})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, outs[0], googleads.ConfigError, googleads.CodeInvalidCustomerID)
	}
	if n := len(e.srv.Requests()) - before; n != 0 {
		t.Errorf("bad customer ids sent %d requests", n)
	}
	if _, err := googleads.New(googleads.Config{ClientID: "x", ClientSecret: "y", RefreshToken: "z", LoginCustomerID: "12-34"}); err == nil {
		t.Error("a bad login customer id was accepted")
	}
}

// TestEveryClassificationRow gives the middle row of a batch of three each
// code of EXTERNAL-APIS.md's table; the rows around it must be uploaded,
// so the outcome is matched by fieldPathElements index, not by position.
func TestEveryClassificationRow(t *testing.T) {
	rows := []struct {
		code   string
		status googleads.Status
		retry  time.Duration
	}{
		{"CLICK_CONVERSION_ALREADY_EXISTS", googleads.AlreadyUploaded, 0},
		{"ORDER_ID_ALREADY_IN_USE", googleads.AlreadyUploaded, 0},
		{"TOO_RECENT_EVENT", googleads.RetryLater, 6 * time.Hour},
		{"TOO_RECENT_CONVERSION_ACTION", googleads.RetryLater, 6 * time.Hour},
		{"UNPARSEABLE_GCLID", googleads.Permanent, 0},
		{"UNPARSEABLE_GBRAID", googleads.Permanent, 0},
		{"UNPARSEABLE_WBRAID", googleads.Permanent, 0},
		{"GBRAID_WBRAID_BOTH_SET", googleads.Permanent, 0},
		{"CONVERSION_PRECEDES_EVENT", googleads.Permanent, 0},
		{"EXPIRED_EVENT", googleads.Permanent, 0},
		{"EVENT_NOT_FOUND", googleads.Permanent, 0},
		{"CLICK_NOT_FOUND", googleads.Permanent, 0},
		{"DUPLICATE_CLICK_CONVERSION_IN_REQUEST", googleads.Permanent, 0},
		{"DUPLICATE_ORDER_ID", googleads.Permanent, 0},
		{"UNAUTHORIZED_CUSTOMER", googleads.ConfigError, 0},
		{"INVALID_CUSTOMER_FOR_CLICK", googleads.ConfigError, 0},
		{"NO_CONVERSION_ACTION_FOUND", googleads.ConfigError, 0},
		{"INVALID_CONVERSION_ACTION_TYPE", googleads.ConfigError, 0},
		{"CONVERSION_TRACKING_NOT_ENABLED_AT_IMPRESSION_TIME", googleads.ConfigError, 0},
		{"CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS", googleads.ConfigError, 0},
		// A code the table does not know is about the row's data.
		{"SOMETHING_NEW_IN_V27", googleads.Permanent, 0},
	}
	e := setup(t)
	for i, row := range rows {
		t.Run(row.code, func(t *testing.T) {
			bad := fmt.Sprintf("bad-%d", i)
			e.srv.FailClick(bad, googleadstest.RowError{Code: row.code})
			outs := upload(t, e, conv(fmt.Sprintf("ok-a-%d", i), fmt.Sprintf("a%d", i)), conv(bad, fmt.Sprintf("b%d", i)), conv(fmt.Sprintf("ok-c-%d", i), fmt.Sprintf("c%d", i)))
			wantStatus(t, outs[0], googleads.Uploaded, "")
			wantStatus(t, outs[1], row.status, row.code)
			wantStatus(t, outs[2], googleads.Uploaded, "")
			if row.status == googleads.RetryLater {
				if want := e.clock.Now().Add(row.retry); !outs[1].RetryAt.Equal(want) {
					t.Errorf("RetryAt = %v, want %v", outs[1].RetryAt, want)
				}
			} else if !outs[1].RetryAt.IsZero() {
				t.Errorf("RetryAt set for %s", row.status)
			}
		})
	}
}

// TestFakeValidationThroughTheClient makes the fake find the errors itself,
// several in one batch, and checks each lands on its own row.
func TestFakeValidationThroughTheClient(t *testing.T) {
	e := setup(t)
	web := e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 555, Name: "Page view", Type: "WEBPAGE"})
	e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 777, Name: "Brand new", CreatedAt: start.Add(-time.Hour)})
	e.srv.AddClick(googleadstest.Click{ID: "late-click", CustomerID: customer, Time: start.Add(-30 * time.Minute)})
	e.srv.AddClick(googleadstest.Click{ID: "fresh-click", CustomerID: customer, Time: start.Add(-2 * time.Hour)})
	e.srv.AddClick(googleadstest.Click{ID: "old-click", CustomerID: customer, Time: start.AddDate(0, 0, -120)})
	e.srv.AddClick(googleadstest.Click{ID: "other-account", CustomerID: "5555555555", Time: start.AddDate(0, 0, -1)})
	e.srv.AddClick(googleadstest.Click{ID: "good-click", CustomerID: customer, Time: start.AddDate(0, 0, -1)})

	upload(t, e, conv("already", "already-1"))
	braids := conv("", "braids")
	braids.GBRAID, braids.WBRAID = "gb1", "wb1"
	twoIDs := conv("g-two", "two")
	twoIDs.WBRAID = "wb2"
	noID := conv("", "none")
	sameTime := conv("twice", "twice-1")
	sameTime2 := conv("twice", "twice-2")
	dupOrder := conv("dup-order-a", "dup")
	dupOrder2 := conv("dup-order-b", "dup")
	badCurrency := conv("cur", "cur")
	badCurrency.Currency = "XYZ"
	wrongType := conv("wt", "wt")
	wrongType.Action = fmt.Sprint(web.ID)
	missing := conv("missing", "missing")
	missing.Action = "424242"
	tooNew := conv("too-new-action", "tna")
	tooNew.Action = "777"
	batch := []googleads.Conversion{
		conv("good-click", "g1"),       // 0
		conv("late-click", "late"),     // 1: conversion an hour before start, click 30 min before
		conv("fresh-click", "fresh"),   // 2: click 2 h ago
		conv("old-click", "old"),       // 3: 120 days
		conv("other-account", "other"), // 4
		conv("already", "already-1"),   // 5: same order id again
		conv("already", "already-2"),   // 6: same click and time, new order id
		braids,                         // 7
		twoIDs,                         // 8
		noID,                           // 9
		conv("bad gclid!", "unparse"),  // 10
		sameTime, sameTime2,            // 11, 12
		dupOrder, dupOrder2, // 13, 14
		badCurrency,          // 15
		wrongType,            // 16
		missing,              // 17
		tooNew,               // 18
		conv("good-2", "g2"), // 19
	}
	want := []struct {
		s    googleads.Status
		code string
	}{
		{googleads.Uploaded, ""},
		{googleads.Permanent, "CONVERSION_PRECEDES_EVENT"},
		{googleads.RetryLater, "TOO_RECENT_EVENT"},
		{googleads.Permanent, "EXPIRED_EVENT"},
		{googleads.ConfigError, "INVALID_CUSTOMER_FOR_CLICK"},
		{googleads.AlreadyUploaded, "ORDER_ID_ALREADY_IN_USE"},
		{googleads.AlreadyUploaded, "CLICK_CONVERSION_ALREADY_EXISTS"},
		{googleads.Permanent, "GBRAID_WBRAID_BOTH_SET"},
		{googleads.Permanent, "VALUE_MUST_BE_UNSET"},
		{googleads.Permanent, "REQUIRED_FIELD_MISSING"},
		{googleads.Permanent, "UNPARSEABLE_GCLID"},
		{googleads.Uploaded, ""},
		{googleads.Permanent, "DUPLICATE_CLICK_CONVERSION_IN_REQUEST"},
		{googleads.Uploaded, ""},
		{googleads.Permanent, "DUPLICATE_ORDER_ID"},
		{googleads.Permanent, "UNSUPPORTED"},
		{googleads.ConfigError, "INVALID_CONVERSION_ACTION_TYPE"},
		{googleads.ConfigError, "NO_CONVERSION_ACTION_FOUND"},
		{googleads.RetryLater, "TOO_RECENT_CONVERSION_ACTION"},
		{googleads.Uploaded, ""},
	}
	outs := upload(t, e, batch...)
	for i, w := range want {
		if outs[i].Status != w.s || outs[i].Code != w.code {
			t.Errorf("row %d: %s %s (%s), want %s %s", i, outs[i].Status, outs[i].Code, outs[i].Message, w.s, w.code)
		}
	}
	if n := len(e.srv.RequestsTo(googleadstest.EndpointUpload)); n != 2 {
		t.Errorf("%d upload calls, want 2", n)
	}
}

func TestWholeRequestErrors(t *testing.T) {
	now := start
	cases := []struct {
		name    string
		fail    googleadstest.Failure
		status  googleads.Status
		code    string
		retryAt time.Time
	}{
		{"429 with Retry-After", googleadstest.Failure{Status: 429, RetryAfter: "120"}, googleads.RetryLater, "RESOURCE_EXHAUSTED", now.Add(120 * time.Second)},
		{"429 with retryDelay", googleadstest.Failure{Status: 429, RetryDelay: "30s"}, googleads.RetryLater, "RESOURCE_EXHAUSTED", now.Add(30 * time.Second)},
		{"429 temporarily exhausted", googleadstest.Failure{Status: 429, Code: "RESOURCE_TEMPORARILY_EXHAUSTED"}, googleads.RetryLater, "RESOURCE_TEMPORARILY_EXHAUSTED", now.Add(time.Minute)},
		{"429 access prohibited", googleadstest.Failure{Status: 429, Code: "ACCESS_PROHIBITED"}, googleads.ConfigError, "ACCESS_PROHIBITED", time.Time{}},
		{"500", googleadstest.Failure{Status: 500}, googleads.RetryLater, "INTERNAL_ERROR", now.Add(time.Minute)},
		{"503 with a date", googleadstest.Failure{Status: 503, RetryAfter: now.Add(10 * time.Minute).Format(http.TimeFormat)}, googleads.RetryLater, "TRANSIENT_ERROR", now.Add(10 * time.Minute)},
		{"504", googleadstest.Failure{Status: 504}, googleads.RetryLater, "DEADLINE_EXCEEDED", now.Add(time.Minute)},
		{"502 HTML from a front end", googleadstest.Failure{Status: 502, RawBody: "<html><body>502 Bad Gateway</body></html>"}, googleads.RetryLater, "HTTP_502", now.Add(time.Minute)},
		{"403 authorization", googleadstest.Failure{Status: 403}, googleads.ConfigError, "USER_PERMISSION_DENIED", time.Time{}},
		{"403 customer not enabled", googleadstest.Failure{Status: 403, Code: "CUSTOMER_NOT_ENABLED"}, googleads.ConfigError, "CUSTOMER_NOT_ENABLED", time.Time{}},
		{"400 whole request", googleadstest.Failure{Status: 400, Code: "INVALID_CUSTOMER_ID"}, googleads.ConfigError, "INVALID_CUSTOMER_ID", time.Time{}},
		{"404", googleadstest.Failure{Status: 404}, googleads.ConfigError, "RESOURCE_NOT_FOUND", time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			tc.fail.Endpoint = googleadstest.EndpointUpload
			e.srv.FailNext(tc.fail)
			outs := upload(t, e, conv("g1", "o1"), conv("g2", "o2"), conv("g3", "o3"))
			for _, o := range outs {
				wantStatus(t, o, tc.status, tc.code)
				if !o.RetryAt.Equal(tc.retryAt) {
					t.Errorf("RetryAt = %v, want %v", o.RetryAt, tc.retryAt)
				}
			}
			if len(e.srv.Uploads()) != 0 {
				t.Error("the fake stored conversions of a failed request")
			}
			// The next call goes through: nothing was cached wrongly.
			wantStatus(t, upload(t, e, conv("g1", "o1"))[0], googleads.Uploaded, "")
		})
	}
}

func TestSunsetVersionIsAConfigError(t *testing.T) {
	e := setup(t, func(c *googleads.Config) { c.Version = "v19" })
	outs := upload(t, e, googleads.Conversion{GCLID: "g", Action: "987", Time: start, OrderID: "o"})
	wantStatus(t, outs[0], googleads.ConfigError, "NOT_FOUND")
	if p := e.srv.RequestsTo(googleadstest.EndpointUpload)[0].Path; p != "/v19/customers/1234567890:uploadClickConversions" {
		t.Errorf("path %s", p)
	}
}

func TestSplitAt2000(t *testing.T) {
	for _, n := range []int{2000, 2001, 4001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := setup(t)
			convs := make([]googleads.Conversion, n)
			for i := range convs {
				convs[i] = conv(fmt.Sprintf("gclid-%d", i), fmt.Sprintf("order-%d", i))
			}
			// Rows on both sides of each cut fail, to prove the indexes of
			// later calls are mapped back.
			failing := map[int]string{1999: "EXPIRED_EVENT", n - 1: "TOO_RECENT_EVENT"}
			if n > 2000 {
				failing[2000] = "CONVERSION_PRECEDES_EVENT"
			}
			for i, code := range failing {
				e.srv.FailClick(fmt.Sprintf("gclid-%d", i), googleadstest.RowError{Code: code})
			}
			outs := upload(t, e, convs...)
			calls := e.srv.RequestsTo(googleadstest.EndpointUpload)
			if want := (n + 1999) / 2000; len(calls) != want {
				t.Fatalf("%d calls, want %d", len(calls), want)
			}
			total := 0
			for i, c := range calls {
				req, err := googleadstest.ParseUpload(c.Body)
				if err != nil {
					t.Fatal(err)
				}
				if len(req.Conversions) > googleads.MaxConversionsPerRequest || !req.PartialFailure {
					t.Errorf("call %d: %d conversions, partialFailure %v", i, len(req.Conversions), req.PartialFailure)
				}
				if first := req.Conversions[0].Gclid; first != fmt.Sprintf("gclid-%d", total) {
					t.Errorf("call %d starts with %s", i, first)
				}
				total += len(req.Conversions)
			}
			if total != n {
				t.Errorf("%d conversions sent, want %d", total, n)
			}
			for i, o := range outs {
				want := googleads.Uploaded
				if code, ok := failing[i]; ok {
					want = map[string]googleads.Status{"EXPIRED_EVENT": googleads.Permanent, "CONVERSION_PRECEDES_EVENT": googleads.Permanent, "TOO_RECENT_EVENT": googleads.RetryLater}[code]
					if o.Code != code {
						t.Errorf("row %d: code %s, want %s", i, o.Code, code)
					}
				}
				if o.Status != want {
					t.Fatalf("row %d: %s %s, want %s", i, o.Status, o.Code, want)
				}
			}
			if got := len(e.srv.Uploads()); got != n-len(failing) {
				t.Errorf("fake stored %d", got)
			}
		})
	}
}

func TestActionNameResolution(t *testing.T) {
	t.Run("found and cached: one search for many uploads", func(t *testing.T) {
		e := setup(t)
		for i := 0; i < 5; i++ {
			outs := upload(t, e, conv(fmt.Sprintf("g%d", i), fmt.Sprint(i)), conv(fmt.Sprintf("h%d", i), fmt.Sprint("h", i)))
			wantStatus(t, outs[0], googleads.Uploaded, "")
			if outs[0].Action != actionRes {
				t.Fatalf("Action = %s", outs[0].Action)
			}
		}
		s := e.srv.RequestsTo(googleadstest.EndpointSearch)
		if len(s) != 1 {
			t.Fatalf("%d searches, want 1", len(s))
		}
		if s[0].Path != "/v26/customers/1234567890/googleAds:search" {
			t.Errorf("path %s", s[0].Path)
		}
		want := `{"query":"SELECT conversion_action.resource_name, conversion_action.name, conversion_action.status, conversion_action.type FROM conversion_action WHERE conversion_action.name = 'Qualified lead'"}`
		if string(s[0].Body) != want {
			t.Errorf("search body\n got %s\nwant %s", s[0].Body, want)
		}
		// After the cache's lifetime, one more search.
		e.clock.Add(googleads.DefaultActionCacheTTL + time.Second)
		upload(t, e, conv("later", "later"))
		if n := len(e.srv.RequestsTo(googleadstest.EndpointSearch)); n != 2 {
			t.Errorf("%d searches after expiry, want 2", n)
		}
	})
	t.Run("concurrent uploads share one search", func(t *testing.T) {
		e := setup(t)
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs, err := e.c.UploadClickConversions(context.Background(), customer, []googleads.Conversion{conv(fmt.Sprintf("c%d", i), fmt.Sprint(i))})
				if err != nil || outs[0].Status != googleads.Uploaded {
					t.Errorf("%v %+v", err, outs)
				}
			}()
		}
		wg.Wait()
		if n := len(e.srv.RequestsTo(googleadstest.EndpointSearch)); n != 1 {
			t.Errorf("%d searches, want 1", n)
		}
	})
	t.Run("not found, removed, wrong type", func(t *testing.T) {
		e := setup(t)
		e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 11, Name: "Old lead", Status: "REMOVED"})
		e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 12, Name: "Page view", Type: "WEBPAGE"})
		// Another customer's action of the same name is not this one's.
		e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: "5555555555", ID: 13, Name: "Elsewhere"})
		for i, tc := range []struct{ name, code, says string }{
			{"Nope", googleads.CodeNoConversionAction, `no conversion action named "Nope" in customer 1234567890`},
			{"Old lead", googleads.CodeNoConversionAction, `conversion action "Old lead" in customer 1234567890 is removed`},
			{"Page view", googleads.CodeInvalidActionType, `conversion action "Page view" in customer 1234567890 is of type WEBPAGE`},
			{"Elsewhere", googleads.CodeNoConversionAction, `no conversion action named "Elsewhere"`},
		} {
			c := conv(fmt.Sprint("g-", i), fmt.Sprint("o-", i))
			c.Action = tc.name
			outs := upload(t, e, c, conv(fmt.Sprint("fine-", i), fmt.Sprint("fine-", i)))
			wantStatus(t, outs[0], googleads.ConfigError, tc.code)
			if !strings.Contains(outs[0].Message, tc.says) {
				t.Errorf("message %q does not say %q", outs[0].Message, tc.says)
			}
			wantStatus(t, outs[1], googleads.Uploaded, "")
		}
		// Failures are not cached: once fixed, the next upload finds it.
		e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 14, Name: "Nope"})
		c := conv("g-fixed", "fixed")
		c.Action = "Nope"
		wantStatus(t, upload(t, e, c)[0], googleads.Uploaded, "")
	})
	t.Run("a removed action with a live namesake", func(t *testing.T) {
		e := setup(t)
		e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 1, Name: "Twin", Status: "REMOVED"})
		e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 2, Name: "Twin"})
		c := conv("twin", "twin")
		c.Action = "Twin"
		if o := upload(t, e, c)[0]; o.Status != googleads.Uploaded || o.Action != "customers/1234567890/conversionActions/2" {
			t.Errorf("%+v", o)
		}
	})
	t.Run("names with quotes and backslashes", func(t *testing.T) {
		e := setup(t)
		for i, name := range []string{`Lead's "best"`, `back\slash`, `it\'s`, `'`, `\`} {
			e.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: int64(100 + i), Name: name})
			c := conv(fmt.Sprint("q", i), fmt.Sprint("q", i))
			c.Action = name
			o := upload(t, e, c)[0]
			if o.Status != googleads.Uploaded || o.Action != fmt.Sprintf("customers/1234567890/conversionActions/%d", 100+i) {
				t.Errorf("%q: %+v", name, o)
			}
		}
		s := e.srv.RequestsTo(googleadstest.EndpointSearch)
		var q struct{ Query string }
		json.Unmarshal(s[0].Body, &q)
		if !strings.HasSuffix(q.Query, `conversion_action.name = 'Lead\'s "best"'`) {
			t.Errorf("query %s", q.Query)
		}
		json.Unmarshal(s[2].Body, &q)
		if !strings.HasSuffix(q.Query, `conversion_action.name = 'it\\\'s'`) {
			t.Errorf("query %s", q.Query)
		}
	})
	t.Run("a name with a line break is refused before any search", func(t *testing.T) {
		e := setup(t)
		c := conv("nl", "nl")
		c.Action = "two\nlines"
		wantStatus(t, upload(t, e, c)[0], googleads.ConfigError, googleads.CodeNoConversionAction)
		if n := len(e.srv.Requests()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("ids and resource names need no search", func(t *testing.T) {
		e := setup(t)
		a, b := conv("id", "id"), conv("res", "res")
		a.Action, b.Action = "987", actionRes
		outs := upload(t, e, a, b)
		wantStatus(t, outs[0], googleads.Uploaded, "")
		wantStatus(t, outs[1], googleads.Uploaded, "")
		if n := len(e.srv.RequestsTo(googleadstest.EndpointSearch)); n != 0 {
			t.Errorf("%d searches", n)
		}
	})
	t.Run("a failing search is a retry", func(t *testing.T) {
		e := setup(t)
		e.srv.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointSearch, Status: 503, RetryAfter: "30"})
		o := upload(t, e, conv("s", "s"))[0]
		wantStatus(t, o, googleads.RetryLater, "TRANSIENT_ERROR")
		if !o.RetryAt.Equal(start.Add(30 * time.Second)) {
			t.Errorf("RetryAt %v", o.RetryAt)
		}
		if n := len(e.srv.RequestsTo(googleadstest.EndpointUpload)); n != 0 {
			t.Errorf("uploaded without an action: %d", n)
		}
	})
	t.Run("empty action", func(t *testing.T) {
		e := setup(t)
		c := conv("e", "e")
		c.Action = ""
		wantStatus(t, upload(t, e, c)[0], googleads.ConfigError, googleads.CodeNoConversionAction)
	})
}

func TestToken(t *testing.T) {
	t.Run("cached across calls", func(t *testing.T) {
		e := setup(t)
		for i := 0; i < 3; i++ {
			upload(t, e, conv(fmt.Sprint("g", i), fmt.Sprint(i)))
		}
		if n := e.srv.TokensIssued(); n != 1 {
			t.Errorf("%d tokens", n)
		}
	})
	t.Run("refreshed shortly before expiry by the injected clock", func(t *testing.T) {
		e := setup(t)
		upload(t, e, conv("g0", "0"))
		e.clock.Add(time.Hour - time.Minute - time.Second) // a second before the early margin
		upload(t, e, conv("g1", "1"))
		if n := e.srv.TokensIssued(); n != 1 {
			t.Fatalf("refreshed too early: %d tokens", n)
		}
		e.clock.Add(2 * time.Second)
		upload(t, e, conv("g2", "2"))
		if n := e.srv.TokensIssued(); n != 2 {
			t.Fatalf("not refreshed: %d tokens", n)
		}
		ups := e.srv.RequestsTo(googleadstest.EndpointUpload)
		if got := ups[len(ups)-1].Header.Get("Authorization"); got != "Bearer ya29.fake-access-2" {
			t.Errorf("last call used %s", got)
		}
		if len(ups) != 3 {
			t.Errorf("%d upload calls: the expired token must not have been tried", len(ups))
		}
	})
	t.Run("refreshed once on 401 and retried once", func(t *testing.T) {
		e := setup(t)
		upload(t, e, conv("g0", "0"))
		e.srv.ExpireTokens()
		wantStatus(t, upload(t, e, conv("g1", "1"))[0], googleads.Uploaded, "")
		ups := e.srv.RequestsTo(googleadstest.EndpointUpload)
		if len(ups) != 3 || ups[1].Header.Get("Authorization") != "Bearer ya29.fake-access-1" || ups[2].Header.Get("Authorization") != "Bearer ya29.fake-access-2" {
			t.Errorf("calls: %d", len(ups))
		}
	})
	t.Run("a second 401 is a config error", func(t *testing.T) {
		e := setup(t)
		unauth := googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 401}
		e.srv.FailNext(unauth, unauth)
		c := conv("g", "o")
		c.Action = "987"
		wantStatus(t, upload(t, e, c)[0], googleads.ConfigError, "OAUTH_TOKEN_INVALID")
		if n := len(e.srv.RequestsTo(googleadstest.EndpointUpload)); n != 2 {
			t.Errorf("%d calls, want 2", n)
		}
		if n := e.srv.TokensIssued(); n != 2 {
			t.Errorf("%d tokens, want 2", n)
		}
	})
	t.Run("invalid_grant is a config error", func(t *testing.T) {
		e := setup(t)
		e.srv.RevokeRefreshToken()
		o := upload(t, e, conv("g", "o"), conv("h", "p"))
		for _, x := range o {
			wantStatus(t, x, googleads.ConfigError, "invalid_grant")
		}
		if !strings.Contains(o[0].Message, "Token has been expired or revoked") {
			t.Errorf("message %q", o[0].Message)
		}
		if n := len(e.srv.RequestsTo(googleadstest.EndpointUpload)) + len(e.srv.RequestsTo(googleadstest.EndpointSearch)); n != 0 {
			t.Errorf("%d API calls without a token", n)
		}
	})
	t.Run("invalid_grant on the refresh after a 401", func(t *testing.T) {
		e := setup(t)
		upload(t, e, conv("g0", "0"))
		e.srv.ExpireTokens()
		e.srv.RevokeRefreshToken()
		wantStatus(t, upload(t, e, conv("g1", "1"))[0], googleads.ConfigError, "invalid_grant")
	})
	t.Run("wrong client is a config error", func(t *testing.T) {
		e := setup(t, func(c *googleads.Config) { c.ClientSecret = "wrong" })
		wantStatus(t, upload(t, e, conv("g", "o"))[0], googleads.ConfigError, "invalid_client")
	})
	t.Run("token endpoint trouble is a retry", func(t *testing.T) {
		e := setup(t)
		e.srv.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointToken, Status: 503})
		wantStatus(t, upload(t, e, conv("g", "o"))[0], googleads.RetryLater, "internal_failure")
		wantStatus(t, upload(t, e, conv("g", "o"))[0], googleads.Uploaded, "")
	})
}

func TestNetworkErrorIsARetry(t *testing.T) {
	e := setup(t)
	upload(t, e, conv("g0", "0"))
	cfg := e.cfg
	cfg.BaseURL = "http://127.0.0.1:1" // nothing listens there
	c, err := googleads.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := conv("g", "o")
	a.Action = "987"
	outs, err := c.UploadClickConversions(context.Background(), customer, []googleads.Conversion{a})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, outs[0], googleads.RetryLater, googleads.CodeTransport)
	if !outs[0].RetryAt.After(start) {
		t.Errorf("RetryAt %v", outs[0].RetryAt)
	}
}

func TestCancelledContextIsAnError(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outs, err := e.c.UploadClickConversions(ctx, customer, []googleads.Conversion{conv("g", "o")})
	if err == nil || outs != nil {
		t.Fatalf("outs %v, err %v", outs, err)
	}
}

func TestEmptyBatchSendsNothing(t *testing.T) {
	e := setup(t)
	outs, err := e.c.UploadClickConversions(context.Background(), customer, nil)
	if err != nil || len(outs) != 0 || len(e.srv.Requests()) != 0 {
		t.Fatalf("%v %v %d", outs, err, len(e.srv.Requests()))
	}
}

func TestWireDateTime(t *testing.T) {
	ist, _ := time.LoadLocation("Europe/Istanbul")
	la, _ := time.LoadLocation("America/Los_Angeles")
	cases := []struct {
		name string
		at   time.Time
		loc  *time.Location
		want string
	}{
		{"Istanbul", time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC), ist, "2026-11-20 14:00:00+03:00"},
		{"Istanbul across midnight", time.Date(2026, 6, 30, 22, 30, 15, 0, time.UTC), ist, "2026-07-01 01:30:15+03:00"},
		{"LA before spring forward", time.Date(2026, 3, 8, 9, 59, 59, 0, time.UTC), la, "2026-03-08 01:59:59-08:00"},
		{"LA after spring forward", time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC), la, "2026-03-08 03:00:00-07:00"},
		{"LA before fall back", time.Date(2026, 11, 1, 8, 59, 59, 0, time.UTC), la, "2026-11-01 01:59:59-07:00"},
		{"LA after fall back (same wall clock hour again)", time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), la, "2026-11-01 01:00:00-08:00"},
		{"UTC", time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC), time.UTC, "2026-11-20 11:00:00+00:00"},
		{"nil is UTC", time.Date(2026, 11, 20, 11, 0, 0, 0, ist), nil, "2026-11-20 08:00:00+00:00"},
		{"sub-second dropped", time.Date(2026, 11, 20, 11, 0, 0, 999_999_999, time.UTC), time.UTC, "2026-11-20 11:00:00+00:00"},
	}
	for _, tc := range cases {
		if got := googleads.ConversionDateTime(tc.at, tc.loc); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}

	// Through the fake: the same instant in three zones is one conversion.
	e := setup(t)
	e.srv.AddClick(googleadstest.Click{ID: "tz-click", CustomerID: customer, Time: start.Add(-24 * time.Hour)})
	var sent []string
	for i, loc := range []*time.Location{ist, la, time.UTC} {
		c := conv("tz-click", fmt.Sprint("tz", i))
		c.TimeZone = loc
		o := upload(t, e, c)[0]
		if i == 0 {
			wantStatus(t, o, googleads.Uploaded, "")
		} else {
			wantStatus(t, o, googleads.AlreadyUploaded, "CLICK_CONVERSION_ALREADY_EXISTS")
		}
		r, _ := googleadstest.ParseUpload(e.srv.RequestsTo(googleadstest.EndpointUpload)[i].Body)
		sent = append(sent, r.Conversions[0].ConversionDateTime)
	}
	if strings.Join(sent, "|") != "2026-11-20 14:00:00+03:00|2026-11-20 03:00:00-08:00|2026-11-20 11:00:00+00:00" {
		t.Errorf("sent %v", sent)
	}
}

func TestUploadOfflineConversion(t *testing.T) {
	e := setup(t)
	ist, _ := time.LoadLocation("Europe/Istanbul")
	cu := e.c.Customer(customerDash, "TRY", ist)
	at := start.Add(-time.Hour)
	o, err := cu.UploadOfflineConversion(context.Background(), "gclid-roadmap", actionName, 250.5, at)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, o, googleads.Uploaded, "")
	o, err = cu.UploadOfflineConversion(context.Background(), "gclid-roadmap", actionName, 250.5, at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, o, googleads.AlreadyUploaded, "ORDER_ID_ALREADY_IN_USE")
	r, _ := googleadstest.ParseUpload(e.srv.RequestsTo(googleadstest.EndpointUpload)[0].Body)
	c := r.Conversions[0]
	if c.OrderID != googleads.OrderIDFor("gclid-roadmap") || c.CurrencyCode != "TRY" || *c.ConversionValue != 250.5 ||
		c.ConversionDateTime != "2026-11-20 14:00:00+03:00" || c.ConversionAction != actionRes {
		t.Errorf("sent %+v", c)
	}
	if googleads.OrderIDFor("a") == googleads.OrderIDFor("b") || strings.Contains(googleads.OrderIDFor("gclid-roadmap"), "gclid") {
		t.Error("order ids must differ per click and not carry the click id")
	}
}

// TestNoSecretAnywhere drives every failure path and looks for the secrets
// in outcomes, errors and a logged Config.
func TestNoSecretAnywhere(t *testing.T) {
	secrets := []string{googleadstest.ClientSecret, googleadstest.RefreshToken, "ya29.", "dev-t0ken"}
	var seen []string
	check := func(where string) {
		for _, s := range secrets {
			for _, text := range seen {
				if strings.Contains(text, s) {
					t.Errorf("%s: %q shows up in %q", where, s, text)
				}
			}
		}
	}
	e := setup(t, func(c *googleads.Config) { c.DeveloperToken = "dev-t0ken" })
	collect := func(outs []googleads.Outcome, err error) {
		for _, o := range outs {
			seen = append(seen, o.Message, o.Code)
		}
		if err != nil {
			seen = append(seen, err.Error())
		}
	}
	collect(e.c.UploadClickConversions(context.Background(), customer, []googleads.Conversion{conv("g", "o")}))
	for _, f := range []googleadstest.Failure{{Status: 401}, {Status: 403}, {Status: 429}, {Status: 500}, {Endpoint: googleadstest.EndpointToken, Status: 500}} {
		e.srv.FailNext(f)
		e.srv.ExpireTokens()
		collect(e.c.UploadClickConversions(context.Background(), customer, []googleads.Conversion{conv("g2", "o2")}))
	}
	e.srv.RevokeRefreshToken()
	e.srv.ExpireTokens()
	collect(e.c.UploadClickConversions(context.Background(), customer, []googleads.Conversion{conv("g3", "o3")}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	collect(e.c.UploadClickConversions(ctx, customer, []googleads.Conversion{conv("g4", "o4")}))
	_, err := googleads.New(googleads.Config{ClientID: "x", ClientSecret: config.Secret(googleadstest.ClientSecret), RefreshToken: "", BaseURL: "ftp://x"})
	collect(nil, err)

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "cfg", e.cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "cfg", e.cfg)
	seen = append(seen, logs.String(), fmt.Sprintf("%v %+v %#v", e.cfg, e.cfg, e.cfg))
	check("outputs")
	if !strings.Contains(logs.String(), googleadstest.ClientID) {
		t.Error("the logged config lost its non-secret fields")
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	base := googleads.Config{ClientID: "id", ClientSecret: "s", RefreshToken: "r"}
	for name, edit := range map[string]func(*googleads.Config){
		"ClientID":     func(c *googleads.Config) { c.ClientID = "" },
		"ClientSecret": func(c *googleads.Config) { c.ClientSecret = "" },
		"RefreshToken": func(c *googleads.Config) { c.RefreshToken = "" },
		"BaseURL":      func(c *googleads.Config) { c.BaseURL = "not a url" },
		"TokenURL":     func(c *googleads.Config) { c.TokenURL = "ftp://x/token" },
		"Version":      func(c *googleads.Config) { c.Version = "v26/../x" },
	} {
		cfg := base
		edit(&cfg)
		_, err := googleads.New(cfg)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := googleads.New(base); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
