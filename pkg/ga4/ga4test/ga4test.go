// Package ga4test is an in-process fake of the GA4 Measurement Protocol:
// mp/collect answers 204 to anything, as GA4 does, and keeps only the events
// GA4 would keep; debug/mp/collect answers the validationMessages for the
// same payload. It checks the credentials, client_id, the 25-event limit,
// event and parameter names (length, characters, reserved names), parameter
// counts and value lengths, and timestamps older than 72 hours. It can be
// told to fail with an HTTP status, and records every request.
package ga4test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/ga4"
)

// Credentials the server accepts unless told otherwise.
const (
	MeasurementID = "G-FAKE12345"
	APISecret     = "fake-mp-s3cret"
)

// Options configure a server; the zero value works.
type Options struct {
	Now                      func() time.Time // default time.Now
	MeasurementID, APISecret string           // defaults above
}

// Request is one request received.
type Request struct {
	Debug  bool
	Query  url.Values
	Header http.Header
	Body   []byte
	// Messages are what debug/mp/collect says (or would say) of it.
	Messages []ga4.ValidationMessage
}

// Event is one event GA4 would have recorded.
type Event struct {
	ClientID  string
	Name      string
	Params    map[string]any
	Timestamp time.Time
}

// Server is the fake; safe for concurrent use.
type Server struct {
	URL string

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	requests []Request
	events   []Event
	failures []failure
}

type failure struct {
	status     int
	retryAfter string
}

// New makes a server without starting it (an http.Handler).
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MeasurementID == "" {
		opts.MeasurementID = MeasurementID
	}
	if opts.APISecret == "" {
		opts.APISecret = APISecret
	}
	return &Server{opts: opts}
}

// NewServer starts a server on a local port; Close stops it.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// Close stops a started server.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// ClientConfig is a ga4.Config that reaches this server.
func (s *Server) ClientConfig() ga4.Config {
	cfg := ga4.Config{BaseURL: s.URL, MeasurementID: s.opts.MeasurementID, APISecret: config.Secret(s.opts.APISecret), Now: s.opts.Now}
	if s.srv != nil {
		cfg.HTTPClient = s.srv.Client()
	}
	return cfg
}

// FailNext makes the next request (either endpoint) answer status, with a
// Retry-After header when retryAfter is set.
func (s *Server) FailNext(status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status, retryAfter})
}

// Requests returns what was received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Events returns the events GA4 would have recorded from mp/collect.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	debug := r.URL.Path == "/debug/mp/collect"
	if r.Method != http.MethodPost || (!debug && r.URL.Path != "/mp/collect") {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	var f *failure
	if len(s.failures) > 0 {
		f = &s.failures[0]
		s.failures = s.failures[1:]
	}
	now := s.opts.Now()
	s.mu.Unlock()
	msgs, events := s.validate(r.URL.Query(), body, now)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Debug: debug, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, Messages: msgs})
	if f == nil && !debug && len(msgs) == 0 {
		s.events = append(s.events, events...)
	}
	s.mu.Unlock()
	if f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(f.status)
		return
	}
	if debug {
		w.Header().Set("Content-Type", "application/json")
		if msgs == nil {
			msgs = []ga4.ValidationMessage{}
		}
		json.NewEncoder(w).Encode(map[string]any{"validationMessages": msgs})
		return
	}
	// GA4 never tells the sender: 204 for everything.
	w.WriteHeader(http.StatusNoContent)
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// reservedEvents are event names GA4 keeps for itself.
var reservedEvents = map[string]bool{
	"ad_activeview": true, "ad_click": true, "ad_exposure": true, "ad_query": true, "ad_reward": true, "adunit_exposure": true,
	"app_background": true, "app_clear_data": true, "app_exception": true, "app_remove": true, "app_store_refund": true,
	"app_store_subscription_cancel": true, "app_store_subscription_convert": true, "app_store_subscription_renew": true,
	"app_update": true, "app_upgrade": true, "dynamic_link_app_open": true, "dynamic_link_app_update": true,
	"dynamic_link_first_open": true, "error": true, "first_open": true, "first_visit": true, "in_app_purchase": true,
	"notification_dismiss": true, "notification_foreground": true, "notification_open": true, "notification_receive": true,
	"os_update": true, "session_start": true, "session_start_with_rollout": true, "user_engagement": true,
}

var reservedPrefixes = []string{"_", "firebase_", "ga_", "google_", "gtag."}

func reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// validate returns the validation messages for a request, and its events.
func (s *Server) validate(q url.Values, body []byte, now time.Time) ([]ga4.ValidationMessage, []Event) {
	var msgs []ga4.ValidationMessage
	add := func(path, code, format string, args ...any) {
		msgs = append(msgs, ga4.ValidationMessage{FieldPath: path, ValidationCode: code, Description: fmt.Sprintf(format, args...)})
	}
	if q.Get("measurement_id") != s.opts.MeasurementID {
		add("measurement_id", "VALUE_INVALID", "Measurement ID [%s] does not match a web data stream.", q.Get("measurement_id"))
	}
	if q.Get("api_secret") != s.opts.APISecret {
		// GA4 drops such requests without a word; the fake says so on debug.
		add("api_secret", "VALUE_INVALID", "The API secret does not belong to the data stream.")
	}
	var p struct {
		ClientID        *string `json:"client_id"`
		TimestampMicros *int64  `json:"timestamp_micros"`
		Events          []struct {
			Name            string         `json:"name"`
			TimestampMicros *int64         `json:"timestamp_micros"`
			Params          map[string]any `json:"params"`
		} `json:"events"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&p); err != nil {
		add("", "VALUE_INVALID", "Unable to parse Measurement Protocol JSON payload. %v", err)
		return msgs, nil
	}
	if p.ClientID == nil || *p.ClientID == "" {
		add("client_id", "VALUE_REQUIRED", "Measurement requires a client_id.")
	}
	tooOld := func(micros *int64) bool {
		return micros != nil && now.Sub(time.UnixMicro(*micros)) > 72*time.Hour
	}
	if tooOld(p.TimestampMicros) {
		add("timestamp_micros", "VALUE_OUT_OF_BOUNDS", "Measurement timestamp_micros [%d] is more than 72 hours in the past.", *p.TimestampMicros)
	}
	switch {
	case len(p.Events) == 0:
		add("events", "VALUE_REQUIRED", "Measurement requires at least one event.")
	case len(p.Events) > 25:
		add("events", "EXCEEDED_MAX_ENTITIES", "A maximum of 25 events can be specified per request.")
	}
	var events []Event
	for i, e := range p.Events {
		switch {
		case len(e.Name) > 40 || !nameRE.MatchString(e.Name):
			add("events", "NAME_INVALID", "Event at index: [%d] has invalid name [%s]. Names must start with an alphabetic character and contain only alphanumeric characters and underscores, at most 40.", i, e.Name)
		case reservedEvents[e.Name] || reserved(e.Name):
			add("events", "NAME_RESERVED", "Event at index: [%d] has name [%s] which is reserved.", i, e.Name)
		}
		if tooOld(e.TimestampMicros) {
			add("events.timestamp_micros", "VALUE_OUT_OF_BOUNDS", "Event at index: [%d] has timestamp_micros [%d] more than 72 hours in the past.", i, *e.TimestampMicros)
		}
		if len(e.Params) > 25 {
			add("events.params", "EXCEEDED_MAX_ENTITIES", "Event at index: [%d] has more than 25 params.", i)
		}
		keys := make([]string, 0, len(e.Params))
		for k := range e.Params {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := e.Params[k]
			switch {
			case len(k) > 40 || !nameRE.MatchString(k):
				add("events.params", "NAME_INVALID", "Event param [%s] has invalid name.", k)
			case reserved(k):
				add("events.params", "NAME_RESERVED", "Event param [%s] has a reserved name.", k)
			}
			if str, ok := v.(string); ok && len([]rune(str)) > 100 {
				add("events.params", "VALUE_OUT_OF_BOUNDS", "Event param [%s] has a value longer than 100 characters.", k)
			}
		}
		ts := now
		switch {
		case e.TimestampMicros != nil:
			ts = time.UnixMicro(*e.TimestampMicros)
		case p.TimestampMicros != nil:
			ts = time.UnixMicro(*p.TimestampMicros)
		}
		clientID := ""
		if p.ClientID != nil {
			clientID = *p.ClientID
		}
		events = append(events, Event{ClientID: clientID, Name: e.Name, Params: e.Params, Timestamp: ts})
	}
	return msgs, events
}
