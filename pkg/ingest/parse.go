package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	fastjson "github.com/segmentio/encoding/json"

	"github.com/opsmantik/opsmantik/pkg/protocol"
)

// The protocol's limits, event types and reasons (pkg/protocol).
const (
	MaxBodyBytes     = protocol.MaxBodyBytes
	MaxEvents        = protocol.MaxEvents
	MaxFuture        = protocol.MaxFuture
	MaxAge           = protocol.MaxAge
	MaxURLLen        = protocol.MaxURLLen
	MaxTitleLen      = protocol.MaxTitleLen
	MaxTargetLen     = protocol.MaxTargetLen
	MaxFormLen       = protocol.MaxFormLen
	MaxUTMLen        = protocol.MaxUTMLen
	MaxClickIDLen    = protocol.MaxClickIDLen
	MaxLangLen       = protocol.MaxLangLen
	MaxTZLen         = protocol.MaxTZLen
	MaxNameLen       = protocol.MaxNameLen
	MaxProps         = protocol.MaxProps
	MaxPropKeyLen    = protocol.MaxPropKeyLen
	MaxPropValueLen  = protocol.MaxPropValueLen
	MaxFailures      = protocol.MaxFailures
	MaxScreen        = protocol.MaxScreen
	MaxTouch         = protocol.MaxTouch
	MaxActiveMS      = protocol.MaxActiveMS
	skewCorrectAbove = protocol.SkewCorrectAbove

	TypePageview      = protocol.TypePageview
	TypeHeartbeat     = protocol.TypeHeartbeat
	TypePhoneClick    = protocol.TypePhoneClick
	TypeWhatsAppClick = protocol.TypeWhatsAppClick
	TypeFormSubmit    = protocol.TypeFormSubmit
	TypeCustom        = protocol.TypeCustom

	ReasonInvalidEvent = protocol.ReasonInvalidEvent
	ReasonInvalidID    = protocol.ReasonInvalidID
	ReasonInvalidType  = protocol.ReasonInvalidType
	ReasonTSOutOfRange = protocol.ReasonTSOutOfRange
	ReasonInvalidField = protocol.ReasonInvalidField
)

// Batch is a validated request body.
type Batch struct {
	Site     string
	SID      uuid.UUID
	VID      *uuid.UUID
	SentAt   time.Time // zero when the client sent none
	Failures int
	Channel  string
	Ctx      Context
	// Events are the accepted non-heartbeat events, sorted by id so that
	// concurrent batches lock rows in the same order.
	Events []Event
	// Heartbeat carries the merged heartbeat values of the batch (Count 0 when none).
	Heartbeat Heartbeat
	// Rejected lists events refused on their own, by index in the request.
	Rejected []Rejection
	// Received is the number of events in the request.
	Received int
	// Skew is this attempt's estimate of the correction for client times
	// (server now − sent_at, in whole minutes), or 0 when the clock is within
	// a minute. The store applies it only when the batch creates the session;
	// later batches use the skew stored with the session.
	Skew time.Duration
}

// Context is the session's landing context.
type Context struct {
	URL, Referrer                                          string
	GCLID, WBRAID, GBRAID                                  string
	UTMSource, UTMMedium, UTMCampaign, UTMTerm, UTMContent string
	Lang, TZ                                               string
	ScreenWidth, ScreenHeight                              int
	Touch                                                  int // navigator.maxTouchPoints, 0..MaxTouch
}

// Event is one stored (non-heartbeat) event.
type Event struct {
	ID   uuid.UUID
	Type string
	// OccurredAt is the client's time corrected by this attempt's skew (used
	// for the range check); ClientAt is the client's time as sent. The store
	// corrects ClientAt by the session's stored skew.
	OccurredAt time.Time
	ClientAt   time.Time
	URL        string
	// Data is the type-specific payload as a JSON object.
	Data []byte
}

// Heartbeat merges the batch's heartbeats: the earliest and latest times, the
// latest time of an active one, and the highest cumulative values. Times are
// the client's, as sent (see Event.ClientAt).
type Heartbeat struct {
	Count        int
	ActiveMS     int64
	Scroll       int
	FirstAt      time.Time
	LastAt       time.Time
	LastActiveAt time.Time // zero when no heartbeat of the batch was active
}

// Rejection is one refused event.
type Rejection = protocol.Rejection

// RequestError is a batch-level refusal: the whole request is answered with
// Status and Code (and Detail), and nothing is stored.
type RequestError struct {
	Status int
	Code   string
	Detail string
}

func (e *RequestError) Error() string {
	if e.Detail == "" {
		return e.Code
	}
	return e.Code + ": " + e.Detail
}

func invalidPayload(format string, args ...any) *RequestError {
	return &RequestError{Status: 400, Code: "invalid_payload", Detail: fmt.Sprintf(format, args...)}
}

// The wire* types decode protocol.Batch leniently: pointers tell a missing
// field from a zero one, and numbers stay float64 so that a fraction or an
// out-of-range value gets its own message. TestWireTypesMatchTheProtocol
// holds their JSON names to pkg/protocol's.

// wireHeader is the batch's fields other than its events.
type wireHeader struct {
	V        *float64     `json:"v"`
	Site     *string      `json:"site"`
	SID      *string      `json:"sid"`
	VID      *string      `json:"vid"`
	SentAt   *float64     `json:"sent_at"`
	Failures *float64     `json:"failures"`
	Channel  *string      `json:"channel"`
	Ctx      *wireContext `json:"ctx"`
}

// wireBatchDecoded decodes the whole body in one pass (the common case).
type wireBatchDecoded struct {
	wireHeader
	Events []wireEvent `json:"events"`
}

// wireBatch keeps each event raw, to refuse events one by one.
type wireBatch struct {
	wireHeader
	Events []json.RawMessage `json:"events"`
}

type wireContext struct {
	URL        string   `json:"url"`
	Referrer   string   `json:"referrer"`
	GCLID      string   `json:"gclid"`
	WBRAID     string   `json:"wbraid"`
	GBRAID     string   `json:"gbraid"`
	UTMSource  string   `json:"utm_source"`
	UTMMedium  string   `json:"utm_medium"`
	UTMCampaig string   `json:"utm_campaign"`
	UTMTerm    string   `json:"utm_term"`
	UTMContent string   `json:"utm_content"`
	Lang       string   `json:"lang"`
	TZ         string   `json:"tz"`
	SW         *float64 `json:"sw"`
	SH         *float64 `json:"sh"`
	Touch      *float64 `json:"touch"`
}

type wireEvent struct {
	ID       *string         `json:"id"`
	Type     *string         `json:"type"`
	TS       *float64        `json:"ts"`
	URL      string          `json:"url"`
	Title    string          `json:"title"`
	ActiveMS *float64        `json:"active_ms"`
	Scroll   *float64        `json:"scroll"`
	State    string          `json:"state"`
	Target   string          `json:"target"`
	Form     string          `json:"form"`
	Name     *string         `json:"name"`
	Props    json.RawMessage `json:"props"`
}

// Parse validates a request body received at now. It returns a *RequestError
// when the whole batch is refused; events refused on their own are listed in
// Batch.Rejected and the rest are returned for storage.
func Parse(body []byte, now time.Time) (*Batch, error) {
	if !utf8.Valid(body) {
		return nil, &RequestError{Status: 400, Code: "invalid_json", Detail: "body is not valid UTF-8"}
	}
	// Fast path: one decoding pass over the whole body. When any part has the
	// wrong shape, decode again event by event so that one bad event is
	// refused alone and the rest of the batch is kept.
	var fast wireBatchDecoded
	if err := fastjson.Unmarshal(body, &fast); err == nil {
		if len(fast.Events) > MaxEvents {
			return nil, &RequestError{Status: 413, Code: "payload_too_large", Detail: fmt.Sprintf("at most %d events per batch, got %d", MaxEvents, len(fast.Events))}
		}
		return parseBatch(&fast.wireHeader, len(fast.Events), func(i int) (Event, *Heartbeat, *Rejection) {
			return checkEvent(&fast.Events[i], now, fast.skew(now))
		}, now)
	}
	return parseEventByEvent(body, now)
}

// parseEventByEvent is the slow path of Parse: it decodes each event on its own.
func parseEventByEvent(body []byte, now time.Time) (*Batch, error) {
	var w wireBatch
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, jsonError(err, "")
	}
	if len(w.Events) > MaxEvents {
		return nil, &RequestError{Status: 413, Code: "payload_too_large", Detail: fmt.Sprintf("at most %d events per batch, got %d", MaxEvents, len(w.Events))}
	}
	return parseBatch(&w.wireHeader, len(w.Events), func(i int) (Event, *Heartbeat, *Rejection) {
		return parseEvent(w.Events[i], now, w.skew(now))
	}, now)
}

// skew is the correction for a client clock that is more than a minute off.
func (w *wireHeader) skew(now time.Time) time.Duration {
	if w.SentAt == nil || *w.SentAt <= 0 || math.IsInf(*w.SentAt, 0) || math.IsNaN(*w.SentAt) {
		return 0
	}
	if skew := now.Sub(time.UnixMilli(int64(*w.SentAt))); skew > skewCorrectAbove || skew < -skewCorrectAbove {
		// Whole minutes: the attempt's network latency (seconds) must not
		// change the correction, so that any attempt of a batch that creates
		// the session stores the same times.
		return skew.Round(time.Minute)
	}
	return 0
}

// parseBatch validates the batch fields and then each of its n events.
func parseBatch(w *wireHeader, n int, eventAt func(i int) (Event, *Heartbeat, *Rejection), now time.Time) (*Batch, error) {
	b := &Batch{Channel: "primary"}
	if w.V == nil {
		return nil, invalidPayload("v: required")
	}
	if *w.V != 1 {
		return nil, invalidPayload("v: unsupported protocol version %v (this server speaks 1)", *w.V)
	}
	if w.Site == nil || *w.Site == "" {
		return nil, invalidPayload("site: required")
	}
	if len(*w.Site) > 64 {
		return nil, invalidPayload("site: longer than 64 characters")
	}
	b.Site = *w.Site
	if w.SID == nil {
		return nil, invalidPayload("sid: required")
	}
	sid, ok := parseUUID(*w.SID)
	if !ok {
		return nil, invalidPayload("sid: must be a UUID")
	}
	b.SID = sid
	if w.VID != nil && *w.VID != "" {
		vid, ok := parseUUID(*w.VID)
		if !ok {
			return nil, invalidPayload("vid: must be a UUID")
		}
		b.VID = &vid
	}
	if w.Failures != nil {
		f := *w.Failures
		if f < 0 || f != math.Trunc(f) {
			return nil, invalidPayload("failures: must be a non-negative integer")
		}
		b.Failures = int(math.Min(f, MaxFailures))
	}
	if w.Channel != nil {
		switch *w.Channel {
		case "primary", "failover":
			b.Channel = *w.Channel
		default:
			return nil, invalidPayload("channel: must be \"primary\" or \"failover\"")
		}
	}
	if w.Ctx == nil {
		return nil, invalidPayload("ctx: required")
	}
	b.Ctx = w.Ctx.normalise()
	if n == 0 {
		return nil, invalidPayload("events: 1 to %d events required", MaxEvents)
	}
	if w.SentAt != nil {
		if *w.SentAt <= 0 || math.IsInf(*w.SentAt, 0) || math.IsNaN(*w.SentAt) {
			return nil, invalidPayload("sent_at: must be milliseconds since the epoch")
		}
		b.SentAt = time.UnixMilli(int64(*w.SentAt))
		b.Skew = w.skew(now)
	}
	b.Received = n
	seen := make(map[uuid.UUID]struct{}, n)
	b.Events = make([]Event, 0, n)
	for i := range n {
		ev, hb, rej := eventAt(i)
		if rej != nil {
			rej.Index = i
			b.Rejected = append(b.Rejected, *rej)
			continue
		}
		if hb != nil {
			b.Heartbeat.merge(*hb)
			continue
		}
		if _, dup := seen[ev.ID]; dup {
			// A second copy in the same request is a duplicate, not an error:
			// it is counted with the duplicates by the store.
			continue
		}
		seen[ev.ID] = struct{}{}
		b.Events = append(b.Events, ev)
	}
	sort.Slice(b.Events, func(i, j int) bool { return bytes.Compare(b.Events[i].ID[:], b.Events[j].ID[:]) < 0 })
	return b, nil
}

// Offered is the number of valid non-heartbeat events in the request,
// counting repeats of an id within it.
func (b *Batch) Offered() int { return b.Received - len(b.Rejected) - b.Heartbeat.Count }

// Empty reports whether nothing in the batch can be stored.
func (b *Batch) Empty() bool { return len(b.Events) == 0 && b.Heartbeat.Count == 0 }

// jsonError turns a decoding error into the response's words.
func jsonError(err error, prefix string) *RequestError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return invalidPayload("%sbody must be a JSON object", prefix)
		}
		return invalidPayload("%s%s: must be %s, not %s", prefix, field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	return &RequestError{Status: 400, Code: "invalid_json", Detail: err.Error()}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "float64", "int", "int64":
		return "a number"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of the documented type"
	}
	return goKind
}

func (c *wireContext) normalise() Context {
	return Context{
		URL:          text(c.URL, MaxURLLen),
		Referrer:     text(c.Referrer, MaxURLLen),
		GCLID:        text(strings.TrimSpace(c.GCLID), MaxClickIDLen),
		WBRAID:       text(strings.TrimSpace(c.WBRAID), MaxClickIDLen),
		GBRAID:       text(strings.TrimSpace(c.GBRAID), MaxClickIDLen),
		UTMSource:    text(c.UTMSource, MaxUTMLen),
		UTMMedium:    text(c.UTMMedium, MaxUTMLen),
		UTMCampaign:  text(c.UTMCampaig, MaxUTMLen),
		UTMTerm:      text(c.UTMTerm, MaxUTMLen),
		UTMContent:   text(c.UTMContent, MaxUTMLen),
		Lang:         text(c.Lang, MaxLangLen),
		TZ:           text(c.TZ, MaxTZLen),
		ScreenWidth:  clampScreen(c.SW),
		ScreenHeight: clampScreen(c.SH),
		Touch:        clampTouch(c.Touch),
	}
}

// clampTouch keeps ctx.touch in 0..MaxTouch; a negative or fractional count
// is no count (0): it only tells iPads from Macs.
func clampTouch(v *float64) int {
	if v == nil || *v < 0 || *v != math.Trunc(*v) {
		return 0
	}
	return int(math.Min(*v, MaxTouch))
}

func clampScreen(v *float64) int {
	if v == nil || *v < 0 || math.IsNaN(*v) {
		return 0
	}
	return int(math.Min(*v, MaxScreen))
}

func (h *Heartbeat) merge(o Heartbeat) {
	h.Count++
	h.ActiveMS = max(h.ActiveMS, o.ActiveMS)
	h.Scroll = max(h.Scroll, o.Scroll)
	if h.FirstAt.IsZero() || o.LastAt.Before(h.FirstAt) {
		h.FirstAt = o.LastAt
	}
	if o.LastAt.After(h.LastAt) {
		h.LastAt = o.LastAt
	}
	if o.LastActiveAt.After(h.LastActiveAt) {
		h.LastActiveAt = o.LastActiveAt
	}
}

func reject(reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// parseEvent validates one event. It returns either a stored event, a
// heartbeat, or a rejection.
func parseEvent(raw json.RawMessage, now time.Time, skew time.Duration) (Event, *Heartbeat, *Rejection) {
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return Event{}, nil, reject(ReasonInvalidEvent, "%s", jsonError(err, "").Detail)
	}
	return checkEvent(&w, now, skew)
}

// checkEvent validates one decoded event.
func checkEvent(w *wireEvent, now time.Time, skew time.Duration) (Event, *Heartbeat, *Rejection) {
	if w.ID == nil {
		return Event{}, nil, reject(ReasonInvalidID, "id: required")
	}
	id, ok := parseUUID(*w.ID)
	if !ok {
		return Event{}, nil, reject(ReasonInvalidID, "id: must be a UUID")
	}
	if w.Type == nil {
		return Event{}, nil, reject(ReasonInvalidType, "type: required")
	}
	if w.TS == nil {
		return Event{}, nil, reject(ReasonInvalidField, "ts: required")
	}
	if math.IsNaN(*w.TS) || math.IsInf(*w.TS, 0) || math.Abs(*w.TS) > 1e15 {
		return Event{}, nil, reject(ReasonTSOutOfRange, "ts: not a time")
	}
	clientAt := time.UnixMilli(int64(*w.TS))
	at := clientAt.Add(skew)
	if at.After(now.Add(MaxFuture)) {
		return Event{}, nil, reject(ReasonTSOutOfRange, "ts: more than 10 minutes ahead of the server clock")
	}
	if at.Before(now.Add(-MaxAge)) {
		return Event{}, nil, reject(ReasonTSOutOfRange, "ts: more than 7 days old")
	}
	ev := Event{ID: id, Type: *w.Type, OccurredAt: at, ClientAt: clientAt, URL: text(w.URL, MaxURLLen)}
	switch ev.Type {
	case TypeHeartbeat:
		hb := Heartbeat{LastAt: clientAt}
		if w.ActiveMS != nil {
			if *w.ActiveMS < 0 || math.IsNaN(*w.ActiveMS) {
				return Event{}, nil, reject(ReasonInvalidField, "active_ms: must be a non-negative number")
			}
			hb.ActiveMS = int64(math.Min(*w.ActiveMS, float64(MaxActiveMS)))
		}
		if w.Scroll != nil {
			if *w.Scroll < 0 || math.IsNaN(*w.Scroll) {
				return Event{}, nil, reject(ReasonInvalidField, "scroll: must be a percentage")
			}
			hb.Scroll = int(math.Min(*w.Scroll, 100))
		}
		switch w.State {
		case "active":
			hb.LastActiveAt = clientAt
		case "", "idle", "hidden":
		default:
			return Event{}, nil, reject(ReasonInvalidField, "state: must be active, idle or hidden")
		}
		return Event{}, &hb, nil
	case TypePageview:
		ev.Data = object("title", text(w.Title, MaxTitleLen))
	case TypePhoneClick, TypeWhatsAppClick:
		ev.Data = object("target", text(w.Target, MaxTargetLen))
	case TypeFormSubmit:
		ev.Data = object("form", text(w.Form, MaxFormLen))
	case TypeCustom:
		if w.Name != nil {
			*w.Name = stripNUL(*w.Name)
		}
		if w.Name == nil || *w.Name == "" || utf8.RuneCountInString(*w.Name) > MaxNameLen {
			return Event{}, nil, reject(ReasonInvalidField, "name: 1 to %d characters required", MaxNameLen)
		}
		props, rej := parseProps(w.Props)
		if rej != nil {
			return Event{}, nil, rej
		}
		data, _ := json.Marshal(struct {
			Name  string         `json:"name"`
			Props map[string]any `json:"props,omitempty"`
		}{*w.Name, props})
		ev.Data = data
	default:
		return Event{}, nil, reject(ReasonInvalidType, "type: unknown event type %q", truncate(*w.Type, 32))
	}
	return ev, nil, nil
}

func parseProps(raw json.RawMessage) (map[string]any, *Rejection) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var props map[string]any
	if err := json.Unmarshal(raw, &props); err != nil {
		return nil, reject(ReasonInvalidField, "props: must be a flat object")
	}
	if len(props) > MaxProps {
		return nil, reject(ReasonInvalidField, "props: at most %d keys", MaxProps)
	}
	if hasNULKey(props) {
		clean := make(map[string]any, len(props))
		for k, v := range props {
			clean[stripNUL(k)] = v
		}
		props = clean
	}
	for k, v := range props {
		if k == "" || utf8.RuneCountInString(k) > MaxPropKeyLen {
			return nil, reject(ReasonInvalidField, "props: keys must be 1 to %d characters", MaxPropKeyLen)
		}
		switch v := v.(type) {
		case string:
			props[k] = text(v, MaxPropValueLen)
		case float64, bool:
		default:
			return nil, reject(ReasonInvalidField, "props.%s: values must be strings, numbers or booleans", truncate(k, 32))
		}
	}
	return props, nil
}

// object is the JSON object {key: value}, or {} when value is empty.
func object(key, value string) []byte {
	if value == "" {
		return []byte("{}")
	}
	buf := make([]byte, 0, len(key)+len(value)+8)
	buf = append(buf, '{', '"')
	buf = append(buf, key...)
	buf = append(buf, '"', ':')
	buf = appendJSONString(buf, value)
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (the body
// was checked), so only quotes, backslashes and control characters need
// escaping.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// text is a string field as stored: without NUL characters (PostgreSQL
// refuses them in text and jsonb, and a batch that can never be stored would
// be retried by the tracker forever) and cut to at most n characters.
func text(s string, n int) string { return truncate(stripNUL(s), n) }

func stripNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "")
}

func hasNULKey(m map[string]any) bool {
	for k := range m {
		if strings.IndexByte(k, 0) >= 0 {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n characters (runes).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// parseUUID accepts the canonical 36-character form only.
func parseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}
