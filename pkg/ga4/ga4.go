// Package ga4 sends qualified leads to Google Analytics 4 through the
// Measurement Protocol (mp/collect) as the recommended event qualify_lead,
// with value, currency and the ad click id as parameters and the visitor id
// as client_id. It sends at most 25 events a request, refuses before sending
// what GA4 would silently drop (events older than 72 hours, a value without
// currency), and offers Validate, which asks debug/mp/collect — the only way
// GA4 says what is wrong with a payload. The API secret never appears in an
// error or a log line.
//
// ga4test is an in-process fake of both endpoints.
package ga4

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/currency"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Limits of the Measurement Protocol.
const (
	DefaultBaseURL      = "https://www.google-analytics.com"
	MaxEventsPerRequest = 25
	// MaxBackdate is how far back an event's timestamp may go.
	MaxBackdate = 72 * time.Hour
	// EventQualifyLead is GA4's recommended event for a lead that became
	// qualified.
	EventQualifyLead = "qualify_lead"
)

// defaultRetryDelay applies to 5xx and network errors without Retry-After.
const defaultRetryDelay = time.Minute

// Config is what a Client needs.
type Config struct {
	BaseURL       string // default DefaultBaseURL
	MeasurementID string // G-XXXXXXX
	APISecret     config.Secret
	HTTPClient    *http.Client     // default: 30-second timeout
	Now           func() time.Time // default time.Now
}

// LogValue keeps the API secret out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("measurement_id", c.MeasurementID), slog.Any("api_secret", c.APISecret))
}

// Lead is one qualified lead.
type Lead struct {
	// VisitorID is the tracker's visitor id; it becomes client_id.
	VisitorID string
	// Time is when the lead qualified; at most 72 hours ago.
	Time time.Time
	// Value and Currency (ISO 4217); a value needs a currency.
	Value    float64
	Currency string
	// The ad click id, sent as a parameter of the same name, when known.
	GCLID, GBRAID, WBRAID string
}

// Status is what became of a lead.
type Status string

const (
	// Sent: GA4 took the request (it never says more; Validate does).
	Sent Status = "sent"
	// Refused: it cannot be sent as it is (too old, no visitor id, a value
	// without currency, or GA4 answered with a 4xx).
	Refused Status = "refused"
	// RetryLater: GA4 or the network failed; send again at RetryAt.
	RetryLater Status = "retry_later"
)

// Outcome is the result for one lead.
type Outcome struct {
	Status  Status
	Reason  string // empty when Sent
	RetryAt time.Time
}

// ValidationMessage is one of debug/mp/collect's validationMessages.
type ValidationMessage struct {
	FieldPath      string `json:"fieldPath"`
	Description    string `json:"description"`
	ValidationCode string `json:"validationCode"`
}

// Client sends to one GA4 web data stream.
type Client struct {
	base, measurementID, secret string
	hc                          *http.Client
	now                         func() time.Time
}

// New checks the configuration; errors name the field, never its value.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if p, err := url.Parse(cfg.BaseURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, errors.New("ga4: BaseURL must be an http(s) URL")
	}
	switch {
	case cfg.MeasurementID == "":
		return nil, errors.New("ga4: MeasurementID is required")
	case cfg.APISecret == "":
		return nil, errors.New("ga4: APISecret is required")
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), measurementID: cfg.MeasurementID, secret: string(cfg.APISecret), hc: cfg.HTTPClient, now: cfg.Now}, nil
}

type event struct {
	Name            string         `json:"name"`
	TimestampMicros int64          `json:"timestamp_micros"`
	Params          map[string]any `json:"params"`
}

type payload struct {
	ClientID        string  `json:"client_id"`
	TimestampMicros int64   `json:"timestamp_micros"`
	Events          []event `json:"events"`
}

// batch is one request: its payload and the leads it carries.
type batch struct {
	payload payload
	leads   []int
}

// check returns why a lead cannot be sent, as GA4's field and code would
// name it, or "".
func (c *Client) check(l Lead, now time.Time) (field, code, reason string) {
	switch {
	case strings.TrimSpace(l.VisitorID) == "":
		return "client_id", "VALUE_REQUIRED", "the visitor id (client_id) is required"
	case now.Sub(l.Time) > MaxBackdate:
		return "timestamp_micros", "VALUE_OUT_OF_BOUNDS", fmt.Sprintf("the lead is %s old; GA4 takes events back-dated at most 72 hours", now.Sub(l.Time).Round(time.Minute))
	case l.Value != 0 && l.Currency == "":
		return "events.params.currency", "VALUE_REQUIRED", "a value needs a currency"
	}
	if l.Currency != "" {
		if _, err := currency.ParseISO(l.Currency); err != nil || len(l.Currency) != 3 || strings.ToUpper(l.Currency) != l.Currency {
			return "events.params.currency", "VALUE_INVALID", fmt.Sprintf("currency %q is not an ISO 4217 code", l.Currency)
		}
	}
	return "", "", ""
}

// batches groups the sendable leads by visitor (one client_id a request),
// at most 25 events each, in the order the leads came.
func (c *Client) batches(leads []Lead, sendable func(int) bool) []batch {
	var out []batch
	open := map[string]int{} // visitor → index in out of its batch being filled
	for i, l := range leads {
		if !sendable(i) {
			continue
		}
		j, ok := open[l.VisitorID]
		if !ok || len(out[j].leads) == MaxEventsPerRequest {
			out = append(out, batch{payload: payload{ClientID: l.VisitorID, TimestampMicros: l.Time.UnixMicro()}})
			j = len(out) - 1
			open[l.VisitorID] = j
		}
		params := map[string]any{"value": l.Value}
		if l.Currency != "" {
			params["currency"] = l.Currency
		}
		for k, v := range map[string]string{"gclid": l.GCLID, "gbraid": l.GBRAID, "wbraid": l.WBRAID} {
			if v != "" {
				params[k] = v
			}
		}
		out[j].payload.Events = append(out[j].payload.Events, event{Name: EventQualifyLead, TimestampMicros: l.Time.UnixMicro(), Params: params})
		out[j].leads = append(out[j].leads, i)
	}
	return out
}

// SendQualifiedLeads sends leads and returns one Outcome each, in order. The
// error is non-nil only when ctx ends (and then no outcome is returned).
func (c *Client) SendQualifiedLeads(ctx context.Context, leads []Lead) ([]Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := c.now()
	out := make([]Outcome, len(leads))
	ok := make([]bool, len(leads))
	for i, l := range leads {
		if _, _, reason := c.check(l, now); reason != "" {
			out[i] = Outcome{Status: Refused, Reason: reason}
			continue
		}
		ok[i] = true
	}
	for _, b := range c.batches(leads, func(i int) bool { return ok[i] }) {
		o, err := c.send(ctx, "/mp/collect", b.payload, nil)
		if err != nil {
			return nil, err
		}
		for _, i := range b.leads {
			out[i] = o
		}
	}
	return out, nil
}

// SendQualifiedLead sends one lead.
func (c *Client) SendQualifiedLead(ctx context.Context, l Lead) (Outcome, error) {
	outs, err := c.SendQualifiedLeads(ctx, []Lead{l})
	if err != nil {
		return Outcome{}, err
	}
	return outs[0], nil
}

// Validate sends the requests SendQualifiedLeads would send to
// debug/mp/collect and returns GA4's validationMessages, after a message for
// each lead refused before sending. The error is a transport or HTTP failure.
func (c *Client) Validate(ctx context.Context, leads []Lead) ([]ValidationMessage, error) {
	now := c.now()
	var msgs []ValidationMessage
	ok := make([]bool, len(leads))
	for i, l := range leads {
		if field, code, reason := c.check(l, now); reason != "" {
			msgs = append(msgs, ValidationMessage{FieldPath: field, ValidationCode: code, Description: fmt.Sprintf("lead %d: %s (refused before sending)", i, reason)})
			continue
		}
		ok[i] = true
	}
	for _, b := range c.batches(leads, func(i int) bool { return ok[i] }) {
		var resp struct {
			ValidationMessages []ValidationMessage `json:"validationMessages"`
		}
		o, err := c.send(ctx, "/debug/mp/collect", b.payload, &resp)
		if err != nil {
			return nil, err
		}
		if o.Status != Sent {
			return nil, fmt.Errorf("ga4 validate: %s", o.Reason)
		}
		msgs = append(msgs, resp.ValidationMessages...)
	}
	return msgs, nil
}

// send posts one payload. The URL carries the API secret, so no error or
// reason ever includes it.
func (c *Client) send(ctx context.Context, path string, p payload, into any) (Outcome, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return Outcome{Status: Refused, Reason: "encode payload: " + err.Error()}, nil
	}
	q := url.Values{"measurement_id": {c.measurementID}, "api_secret": {c.secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return Outcome{Status: Refused, Reason: "build request for " + path}, nil
	}
	req.Header.Set("Content-Type", "application/json")
	now := c.now()
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Outcome{Status: RetryLater, Reason: fmt.Sprintf("POST %s: %v", path, err), RetryAt: now.Add(defaultRetryDelay)}, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if into != nil {
			if err := json.Unmarshal(data, into); err != nil {
				return Outcome{Status: RetryLater, Reason: fmt.Sprintf("POST %s: unreadable answer: %v", path, err), RetryAt: now.Add(defaultRetryDelay)}, nil
			}
		}
		return Outcome{Status: Sent}, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		at := now.Add(defaultRetryDelay)
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs >= 0 {
			at = now.Add(time.Duration(secs) * time.Second)
		} else if t, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil && t.After(now) {
			at = t
		}
		return Outcome{Status: RetryLater, Reason: fmt.Sprintf("POST %s: HTTP %d", path, resp.StatusCode), RetryAt: at}, nil
	}
	return Outcome{Status: Refused, Reason: fmt.Sprintf("POST %s: HTTP %d", path, resp.StatusCode)}, nil
}
