// Package protocol holds the wire types of the tracker ↔ sync protocol
// (docs/protocol.md, version 1): the request body a client sends, the answers
// it gets, the event types, limits and reasons. The tracker is JavaScript;
// every Go sender (pkg/simulate) and the server (pkg/ingest) take the shapes
// and names from here.
package protocol

import "time"

// Version is the protocol version a Batch carries in "v".
const Version = 1

// ContentType is what the tracker sends: text/plain makes no CORS preflight.
const ContentType = "text/plain;charset=UTF-8"

// Event types.
const (
	TypePageview      = "pageview"
	TypeHeartbeat     = "heartbeat"
	TypePhoneClick    = "phone_click"
	TypeWhatsAppClick = "whatsapp_click"
	TypeFormSubmit    = "form_submit"
	TypeCustom        = "custom"
)

// Heartbeat states.
const (
	StateActive = "active"
	StateIdle   = "idle"
	StateHidden = "hidden"
)

// Channels.
const (
	ChannelPrimary  = "primary"
	ChannelFailover = "failover"
)

// Limits (docs/protocol.md, "Limits"). Strings longer than their limit are
// truncated at a character boundary; the others refuse the event or batch.
const (
	MaxBodyBytes    = 64 << 10
	MaxEvents       = 100
	MaxFuture       = 10 * time.Minute
	MaxAge          = 7 * 24 * time.Hour
	MaxURLLen       = 2048
	MaxTitleLen     = 512
	MaxTargetLen    = 512
	MaxFormLen      = 256
	MaxUTMLen       = 256
	MaxClickIDLen   = 512
	MaxLangLen      = 35
	MaxTZLen        = 64
	MaxNameLen      = 64
	MaxProps        = 20
	MaxPropKeyLen   = 64
	MaxPropValueLen = 512
	MaxFailures     = 10
	MaxScreen       = 100000
	MaxTouch        = 255
	MaxActiveMS     = 24 * int64(time.Hour/time.Millisecond)
	// SkewCorrectAbove: a client clock further off than this is corrected.
	SkewCorrectAbove = time.Minute
)

// Per-event rejection reasons, in a 200 answer's "rejected".
const (
	ReasonInvalidEvent = "invalid_event"
	ReasonInvalidID    = "invalid_id"
	ReasonInvalidType  = "invalid_type"
	ReasonTSOutOfRange = "ts_out_of_range"
	ReasonInvalidField = "invalid_field"
)

// Error codes of refused requests.
const (
	ErrInvalidJSON          = "invalid_json"
	ErrInvalidPayload       = "invalid_payload"
	ErrUnknownSite          = "unknown_site"
	ErrOriginNotAllowed     = "origin_not_allowed"
	ErrPayloadTooLarge      = "payload_too_large"
	ErrUnsupportedMediaType = "unsupported_media_type"
	ErrMethodNotAllowed     = "method_not_allowed"
	ErrStorageUnavailable   = "storage_unavailable"
	ErrDatabaseUnreachable  = "database_unreachable"
)

// Batch is the request body.
type Batch struct {
	V        int     `json:"v"`
	Site     string  `json:"site"`
	SID      string  `json:"sid"`
	VID      string  `json:"vid,omitempty"`
	SentAt   int64   `json:"sent_at"`
	Failures int     `json:"failures"`
	Channel  string  `json:"channel"`
	Ctx      Context `json:"ctx"`
	Events   []Event `json:"events"`
}

// Context is a session's landing context. Absent values are sent as null,
// as the tracker does.
type Context struct {
	URL         string  `json:"url"`
	Referrer    *string `json:"referrer"`
	GCLID       *string `json:"gclid"`
	WBRAID      *string `json:"wbraid"`
	GBRAID      *string `json:"gbraid"`
	UTMSource   *string `json:"utm_source"`
	UTMMedium   *string `json:"utm_medium"`
	UTMCampaign *string `json:"utm_campaign"`
	UTMTerm     *string `json:"utm_term"`
	UTMContent  *string `json:"utm_content"`
	Lang        string  `json:"lang"`
	TZ          string  `json:"tz"`
	SW          int     `json:"sw"`
	SH          int     `json:"sh"`
	// Touch is navigator.maxTouchPoints (nil: the browser has none to tell).
	Touch *int `json:"touch,omitempty"`
}

// Event is one event; which optional fields are set depends on Type.
type Event struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	TS       int64          `json:"ts"`
	URL      string         `json:"url"`
	Title    string         `json:"title,omitempty"`     // pageview
	ActiveMS *int64         `json:"active_ms,omitempty"` // heartbeat
	Scroll   *int           `json:"scroll,omitempty"`    // heartbeat
	State    string         `json:"state,omitempty"`     // heartbeat
	Target   string         `json:"target,omitempty"`    // phone_click, whatsapp_click
	Form     string         `json:"form,omitempty"`      // form_submit
	Name     string         `json:"name,omitempty"`      // custom
	Props    map[string]any `json:"props,omitempty"`     // custom
}

// Rejection is one event refused on its own.
type Rejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Accepted is the 200 answer.
type Accepted struct {
	OK         bool        `json:"ok"`
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
}

// Refused is the answer to a refused request (4xx, 5xx).
type Refused struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}
