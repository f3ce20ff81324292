// Package telegram sends operator messages to a Telegram chat through the Bot
// API (sendMessage), with level prefixes, HTML escaping, splitting of long
// messages and one retry for flood control, 5xx answers and network errors.
// The bot token never appears in an error or a log line.
package telegram

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

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Level is how loud a message is; it decides the message's prefix.
type Level string

const (
	Info    Level = "info"
	Warning Level = "warning"
	Alarm   Level = "alarm"
	// Resolved announces that an alarm is over.
	Resolved Level = "resolved"
)

// ParseLevel accepts info, warning, alarm and resolved.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case Info, Warning, Alarm, Resolved:
		return l, nil
	}
	return "", fmt.Errorf("unknown level %q (want info, warning, alarm or resolved)", s)
}

// Prefix is what every message of the level starts with.
func (l Level) Prefix() string {
	switch l {
	case Alarm:
		return "🚨 [CRITICAL]"
	case Warning:
		return "⚠️ [WARNING]"
	case Resolved:
		return "✅ [RESOLVED]"
	default:
		return "ℹ️ [INFO]"
	}
}

// Sender sends one message, given as plain text (every character is escaped
// for the chat), and returns the id of its first Telegram message.
type Sender interface {
	SendMessage(ctx context.Context, text string, level Level) (messageID int, err error)
}

// Error is an answer from the Bot API other than success. Description is
// Telegram's own text ("Bad Request: can't parse entities: ...").
type Error struct {
	StatusCode  int
	Description string
	// RetryAfter is flood control's wait (429 answers only).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return "telegram: " + e.Description }

// Temporary reports whether a later attempt may succeed.
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

const (
	// MaxLength is the Bot API's limit on a message's text after entity
	// parsing, in UTF-16 code units.
	MaxLength = 4096
	// DefaultTimeout bounds one message part, its retry included.
	DefaultTimeout = 5 * time.Second
	// retryBackoff is the pause before retrying a 5xx or network error.
	retryBackoff = 500 * time.Millisecond
	maxAnswer    = 1 << 20
)

// Options are the client's injectable parts; zero values are the defaults.
type Options struct {
	HTTPClient *http.Client
	// Timeout bounds each message part, retry included (default 5 s).
	Timeout time.Duration
	// Wait pauses before a retry; tests replace it to avoid real waiting.
	Wait func(ctx context.Context, d time.Duration) error
}

// Client is a Sender that talks to the Bot API.
type Client struct {
	token    config.Secret
	endpoint string // contains the token: used for requests only
	redacted string // the same URL with the token hidden, for errors
	chatID   any
	threadID int64
	http     *http.Client
	timeout  time.Duration
	wait     func(ctx context.Context, d time.Duration) error
}

// New returns a client for cfg; the token and chat id must be set.
func New(cfg config.Telegram, opts Options) (*Client, error) {
	if err := cfg.Require(); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.APIURL, "/")
	c := &Client{
		token:    cfg.BotToken,
		endpoint: base + "/bot" + string(cfg.BotToken) + "/sendMessage",
		redacted: base + "/bot<redacted>/sendMessage",
		chatID:   chatID(cfg.ChatID),
		threadID: cfg.ThreadID,
		http:     opts.HTTPClient,
		timeout:  opts.Timeout,
		wait:     opts.Wait,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.wait == nil {
		c.wait = sleep
	}
	return c, nil
}

// NewSender returns a Client when a token is configured and otherwise a
// Console that prints to logger, saying so once (the local stack).
func NewSender(cfg config.Telegram, logger *slog.Logger) (Sender, error) {
	if !cfg.Configured() {
		logger.Warn("TELEGRAM_BOT_TOKEN is not set: alerts and test notifications are printed to this log instead of Telegram")
		return NewConsole(logger), nil
	}
	return New(cfg, Options{})
}

// chatID sends numeric ids as numbers and @usernames as strings.
func chatID(s string) any {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}

// String, GoString and LogValue keep the token out of any print of the client.
func (c *Client) String() string       { return fmt.Sprintf("telegram.Client{chat: %v}", c.chatID) }
func (c *Client) GoString() string     { return c.String() }
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// SendMessage sends text with the level's prefix. A text longer than one
// message is sent as several, split at line breaks or spaces when it can be,
// each marked (i/n); nothing is dropped. The id returned is the first part's.
// A failure part-way returns the error; parts already sent stay sent.
func (c *Client) SendMessage(ctx context.Context, text string, level Level) (int, error) {
	// The Bot API rejects invalid UTF-8; keep the rest of the message.
	parts := Split(strings.ToValidUTF8(text, "\uFFFD"), MaxLength-headerLength(level))
	first := 0
	for i, part := range parts {
		id, err := c.sendPart(ctx, render(level, part, i, len(parts)), level)
		if err != nil {
			if len(parts) > 1 {
				return first, fmt.Errorf("part %d of %d: %w", i+1, len(parts), err)
			}
			return 0, err
		}
		if i == 0 {
			first = id
		}
	}
	return first, nil
}

// render is one part's HTML: the bold prefix, the part marker, the escaped text.
func render(level Level, part string, i, n int) string {
	var b strings.Builder
	b.WriteString("<b>" + level.Prefix() + "</b>")
	if n > 1 {
		fmt.Fprintf(&b, " (%d/%d)", i+1, n)
	}
	if part != "" {
		b.WriteString(" ")
		b.WriteString(Escape(part))
	}
	return b.String()
}

// headerLength is the visible length that render adds before the text,
// counting a part marker of the largest size a split can need.
func headerLength(level Level) int {
	return utf16Len(level.Prefix() + " (9999/9999) ")
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe to insert into an HTML-mode message.
func Escape(s string) string { return escaper.Replace(s) }

type sendRequest struct {
	ChatID              any    `json:"chat_id"`
	Text                string `json:"text"`
	ParseMode           string `json:"parse_mode"`
	DisableNotification bool   `json:"disable_notification,omitempty"`
	ThreadID            int64  `json:"message_thread_id,omitempty"`
}

type answer struct {
	OK          bool   `json:"ok"`
	Description string `json:"description"`
	Result      struct {
		MessageID int `json:"message_id"`
	} `json:"result"`
	Parameters struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// sendPart posts one message within the client's timeout, retrying once after
// flood control (when retry_after fits the time left), a 5xx or a network error.
func (c *Client) sendPart(ctx context.Context, html string, level Level) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(sendRequest{
		ChatID:    c.chatID,
		Text:      html,
		ParseMode: "HTML",
		// Info is for reading later; warnings and alarms ring.
		DisableNotification: level == Info,
		ThreadID:            c.threadID,
	})
	if err != nil {
		return 0, fmt.Errorf("telegram: encode message: %w", err)
	}
	for attempt := 1; ; attempt++ {
		id, err := c.post(ctx, body)
		if err == nil {
			return id, nil
		}
		pause, retry := retryPause(ctx, err)
		if !retry || attempt == 2 {
			return 0, err
		}
		if deadline, ok := ctx.Deadline(); ok && pause >= time.Until(deadline) {
			return 0, err
		}
		if werr := c.wait(ctx, pause); werr != nil {
			return 0, err
		}
	}
}

// retryPause decides whether err is worth one more attempt and after how long.
func retryPause(ctx context.Context, err error) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	var tg *Error
	if errors.As(err, &tg) {
		switch {
		case tg.StatusCode == http.StatusTooManyRequests:
			return max(tg.RetryAfter, time.Second), true
		case tg.StatusCode >= 500:
			return retryBackoff, true
		}
		return 0, false
	}
	return retryBackoff, true // network error
}

func (c *Client) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, c.redact(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, c.redact(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, c.redact(err)
	}
	var a answer
	jsonErr := json.Unmarshal(raw, &a)
	if resp.StatusCode == http.StatusOK && jsonErr == nil && a.OK {
		return a.Result.MessageID, nil
	}
	e := &Error{StatusCode: resp.StatusCode, Description: a.Description}
	if jsonErr != nil || e.Description == "" {
		// Not the Bot API speaking (a proxy, a load balancer): name the status.
		e.Description = fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if a.Parameters.RetryAfter > 0 {
		e.RetryAfter = time.Duration(a.Parameters.RetryAfter) * time.Second
	}
	return 0, e
}

// redact rewrites err so that the request URL, which holds the token, is
// replaced by the redacted one.
func (c *Client) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: c.redacted, Err: ue.Err}
	}
	if c.token != "" && strings.Contains(err.Error(), string(c.token)) {
		return errors.New(strings.ReplaceAll(err.Error(), string(c.token), "<redacted>"))
	}
	return fmt.Errorf("telegram: %w", err)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
