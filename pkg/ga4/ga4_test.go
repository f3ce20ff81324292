package ga4_test

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

	"github.com/opsmantik/opsmantik/pkg/ga4"
	"github.com/opsmantik/opsmantik/pkg/ga4/ga4test"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

var now0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T, edit ...func(*ga4.Config)) (*ga4test.Server, *ga4.Client, ga4.Config) {
	t.Helper()
	clk := &clock{t: now0}
	srv := ga4test.NewServer(ga4test.Options{Now: clk.Now})
	t.Cleanup(srv.Close)
	cfg := srv.ClientConfig()
	for _, e := range edit {
		e(&cfg)
	}
	c, err := ga4.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, cfg
}

func lead(visitor string, ago time.Duration) ga4.Lead {
	return ga4.Lead{VisitorID: visitor, Time: now0.Add(-ago), Value: 150, Currency: "TRY", GCLID: "gclid-" + visitor}
}

func send(t *testing.T, c *ga4.Client, leads ...ga4.Lead) []ga4.Outcome {
	t.Helper()
	outs, err := c.SendQualifiedLeads(context.Background(), leads)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(leads) {
		t.Fatalf("%d outcomes for %d leads", len(outs), len(leads))
	}
	return outs
}

func TestRequestShape(t *testing.T) {
	srv, c, _ := setup(t)
	l := lead("v-1", time.Hour)
	o, err := c.SendQualifiedLead(context.Background(), l)
	if err != nil || o.Status != ga4.Sent || o.Reason != "" {
		t.Fatalf("%+v %v", o, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Debug || r.Query.Get("measurement_id") != ga4test.MeasurementID || r.Query.Get("api_secret") != ga4test.APISecret || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %+v", r)
	}
	ts := l.Time.UnixMicro()
	want := fmt.Sprintf(`{"client_id":"v-1","timestamp_micros":%d,"events":[{"name":"qualify_lead","timestamp_micros":%d,"params":{"currency":"TRY","gclid":"gclid-v-1","value":150}}]}`, ts, ts)
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	if len(r.Messages) != 0 {
		t.Errorf("the fake finds fault: %v", r.Messages)
	}
	ev := srv.Events()
	if len(ev) != 1 || ev[0].ClientID != "v-1" || ev[0].Name != "qualify_lead" || !ev[0].Timestamp.Equal(l.Time) || ev[0].Params["value"] != 150.0 {
		t.Errorf("recorded %+v", ev)
	}

	// iOS click ids travel under their own names.
	srv2, c2, _ := setup(t)
	send(t, c2, ga4.Lead{VisitorID: "v-2", Time: now0, WBRAID: "wb-1"})
	var p struct {
		Events []struct{ Params map[string]any }
	}
	json.Unmarshal(srv2.Requests()[0].Body, &p)
	if p.Events[0].Params["wbraid"] != "wb-1" || p.Events[0].Params["gclid"] != nil || p.Events[0].Params["value"] != 0.0 || p.Events[0].Params["currency"] != nil {
		t.Errorf("params %v", p.Events[0].Params)
	}
}

func TestSplitAt25EventsPerVisitor(t *testing.T) {
	for _, tc := range []struct {
		a, b  int // leads of visitors a and b, interleaved
		sizes []int
	}{
		{25, 0, []int{25}},
		{26, 0, []int{25, 1}},
		{51, 0, []int{25, 25, 1}},
		{30, 3, []int{25, 3, 5}},
	} {
		t.Run(fmt.Sprint(tc.a, "+", tc.b), func(t *testing.T) {
			srv, c, _ := setup(t)
			var leads []ga4.Lead
			for i := 0; i < tc.a || i < tc.b; i++ {
				if i < tc.a {
					leads = append(leads, lead("a", time.Duration(i)*time.Minute))
				}
				if i < tc.b {
					leads = append(leads, lead("b", time.Duration(i)*time.Minute))
				}
			}
			for i, o := range send(t, c, leads...) {
				if o.Status != ga4.Sent {
					t.Fatalf("lead %d: %+v", i, o)
				}
			}
			var sizes []int
			for _, r := range srv.Requests() {
				var p struct {
					ClientID string `json:"client_id"`
					Events   []json.RawMessage
				}
				json.Unmarshal(r.Body, &p)
				sizes = append(sizes, len(p.Events))
				if len(r.Messages) != 0 {
					t.Errorf("messages %v", r.Messages)
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.sizes) {
				t.Errorf("request sizes %v, want %v", sizes, tc.sizes)
			}
			if n := len(srv.Events()); n != tc.a+tc.b {
				t.Errorf("%d events recorded", n)
			}
		})
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	srv, c, _ := setup(t)
	noVisitor := lead("", time.Hour)
	noCurrency := lead("v", time.Hour)
	noCurrency.Currency = ""
	badCurrency := lead("v", time.Hour)
	badCurrency.Currency = "try"
	leads := []ga4.Lead{
		lead("v", ga4.MaxBackdate),             // at the edge: accepted
		lead("v", ga4.MaxBackdate+time.Second), // past it
		lead("v", 30*24*time.Hour),             // far past
		noVisitor, noCurrency, badCurrency,
		{VisitorID: "v", Time: now0.Add(-time.Minute)}, // no value, no currency: fine
	}
	outs := send(t, c, leads...)
	want := []ga4.Status{ga4.Sent, ga4.Refused, ga4.Refused, ga4.Refused, ga4.Refused, ga4.Refused, ga4.Sent}
	for i, o := range outs {
		if o.Status != want[i] {
			t.Errorf("lead %d: %+v, want %s", i, o, want[i])
		}
		if o.Status == ga4.Refused && o.Reason == "" {
			t.Errorf("lead %d refused without a reason", i)
		}
	}
	if !strings.Contains(outs[1].Reason, "72 hours") {
		t.Errorf("reason %q", outs[1].Reason)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || len(reqs[0].Messages) != 0 {
		t.Fatalf("%d requests %v", len(reqs), reqs)
	}
	if n := len(srv.Events()); n != 2 {
		t.Errorf("%d events", n)
	}
	// Nothing sendable: no request at all.
	send(t, c, lead("v", 100*time.Hour))
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestValidate(t *testing.T) {
	srv, c, _ := setup(t)
	msgs, err := c.Validate(context.Background(), []ga4.Lead{lead("v", time.Hour)})
	if err != nil || len(msgs) != 0 {
		t.Fatalf("%v %v", msgs, err)
	}
	long := lead("v", time.Hour)
	long.GCLID = strings.Repeat("x", 101)
	msgs, err = c.Validate(context.Background(), []ga4.Lead{lead("v", 80*time.Hour), long})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ValidationCode != "VALUE_OUT_OF_BOUNDS" || msgs[0].FieldPath != "timestamp_micros" ||
		msgs[1].ValidationCode != "VALUE_OUT_OF_BOUNDS" || msgs[1].FieldPath != "events.params" || !strings.Contains(msgs[1].Description, "gclid") {
		t.Errorf("messages %+v", msgs)
	}
	for _, r := range srv.Requests() {
		if !r.Debug {
			t.Errorf("Validate used %v", r.Query)
		}
	}
	if n := len(srv.Events()); n != 0 {
		t.Errorf("Validate recorded %d events", n)
	}

	// A wrong secret: GA4's collect drops silently; only Validate tells.
	srv2, c2, _ := setup(t, func(c *ga4.Config) { c.APISecret = "wrong-secret" })
	if o := send(t, c2, lead("v", time.Hour))[0]; o.Status != ga4.Sent {
		t.Errorf("%+v", o)
	}
	if n := len(srv2.Events()); n != 0 {
		t.Errorf("GA4 kept %d events sent with a wrong secret", n)
	}
	msgs, err = c2.Validate(context.Background(), []ga4.Lead{lead("v", time.Hour)})
	if err != nil || len(msgs) != 1 || msgs[0].FieldPath != "api_secret" {
		t.Errorf("%v %v", msgs, err)
	}
	srv2.FailNext(500, "")
	if _, err := c2.Validate(context.Background(), []ga4.Lead{lead("v", time.Hour)}); err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("validate on a 500: %v", err)
	}
}

func TestFailures(t *testing.T) {
	srv, c, cfg := setup(t)
	srv.FailNext(503, "30")
	srv.FailNext(500, "")
	srv.FailNext(429, now0.Add(5*time.Minute).Format(http.TimeFormat))
	srv.FailNext(400, "")
	for _, want := range []ga4.Outcome{
		{Status: ga4.RetryLater, Reason: "POST /mp/collect: HTTP 503", RetryAt: now0.Add(30 * time.Second)},
		{Status: ga4.RetryLater, Reason: "POST /mp/collect: HTTP 500", RetryAt: now0.Add(time.Minute)},
		{Status: ga4.RetryLater, Reason: "POST /mp/collect: HTTP 429", RetryAt: now0.Add(5 * time.Minute)},
		{Status: ga4.Refused, Reason: "POST /mp/collect: HTTP 400"},
		{Status: ga4.Sent},
	} {
		o := send(t, c, lead("v", time.Hour))[0]
		if o.Status != want.Status || o.Reason != want.Reason || !o.RetryAt.Equal(want.RetryAt) {
			t.Errorf("%+v, want %+v", o, want)
		}
	}
	// The network: a retry, and the secret (in the URL) is not in the reason.
	cfg.BaseURL = "http://127.0.0.1:1"
	c2, _ := ga4.New(cfg)
	o := send(t, c2, lead("v", time.Hour))[0]
	if o.Status != ga4.RetryLater || strings.Contains(o.Reason, ga4test.APISecret) || !strings.Contains(o.Reason, "/mp/collect") {
		t.Errorf("%+v", o)
	}
	_, err := c2.Validate(context.Background(), []ga4.Lead{lead("v", time.Hour)})
	if err == nil || strings.Contains(err.Error(), ga4test.APISecret) {
		t.Errorf("validate: %v", err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "cfg", cfg)
	if out := logs.String() + fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(out, ga4test.APISecret) || !strings.Contains(out, ga4test.MeasurementID) {
		t.Errorf("logged %s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if outs, err := c.SendQualifiedLeads(ctx, []ga4.Lead{lead("v", time.Hour)}); err == nil || outs != nil {
		t.Errorf("cancelled: %v %v", outs, err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for name, cfg := range map[string]ga4.Config{
		"MeasurementID": {APISecret: "s"},
		"APISecret":     {MeasurementID: "G-1"},
		"BaseURL":       {MeasurementID: "G-1", APISecret: "s", BaseURL: "www.google-analytics.com"},
	} {
		if _, err := ga4.New(cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
