// Package telegramtest is an in-process server that speaks the Bot API's
// sendMessage the way Telegram does: it checks the token, the chat and the
// HTML entities, enforces the 4,096-character limit, answers with Telegram's
// status codes and error bodies, and can be told to answer 429, 5xx, hang or
// drop the connection.
package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Token and ChatID are what the server accepts unless told otherwise.
const (
	Token  = "123456789:AAFake-Test-Token_sEcReT"
	ChatID = "-1001234567890"
)

// Message is one accepted sendMessage.
type Message struct {
	ID                  int
	ChatID              string
	ThreadID            int64
	ParseMode           string
	DisableNotification bool
	// HTML is the text as sent; Text is what a reader sees (entities decoded,
	// tags removed).
	HTML string
	Text string
}

// Reply is a scripted answer for one request.
type Reply struct {
	Status int
	Body   string
	// Hang holds the request until the client gives up.
	Hang bool
	// Drop closes the connection without an answer (a network error).
	Drop bool
}

// FloodWait is Telegram's flood-control answer.
func FloodWait(seconds int) Reply {
	return Reply{Status: http.StatusTooManyRequests, Body: fmt.Sprintf(
		`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after %d","parameters":{"retry_after":%d}}`, seconds, seconds)}
}

// ServerError is a 5xx answer as Telegram's front end gives it.
func ServerError(status int) Reply {
	return Reply{Status: status, Body: fmt.Sprintf(`{"ok":false,"error_code":%d,"description":"%s"}`, status, http.StatusText(status))}
}

// BadRequest is a 400 with the given description after "Bad Request: ".
func BadRequest(description string) Reply {
	b, _ := json.Marshal(map[string]any{"ok": false, "error_code": 400, "description": "Bad Request: " + description})
	return Reply{Status: http.StatusBadRequest, Body: string(b)}
}

// Server is the fake Bot API.
type Server struct {
	*httptest.Server
	Token  string
	ChatID string

	mu       sync.Mutex
	script   []Reply
	messages []Message
	requests int
	hold     chan struct{}
	arrived  chan struct{}
	closing  chan struct{}
}

// New starts a server that is closed when the test ends.
func New(tb testing.TB) *Server {
	s := &Server{Token: Token, ChatID: ChatID, arrived: make(chan struct{}, 1024), closing: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(func() {
		close(s.closing)
		s.Release()
		s.Server.CloseClientConnections()
		s.Server.Close()
	})
	return s
}

// Config is the Telegram configuration that reaches this server.
func (s *Server) Config() config.Telegram {
	return config.Telegram{BotToken: config.Secret(s.Token), ChatID: s.ChatID, APIURL: s.URL}
}

// Script queues answers for the next requests, one each; after them the
// server answers normally.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Hold makes requests wait (after they are counted and announced on
// Arrivals) until Release.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release lets held requests, and later ones, through.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Arrivals receives a value for every request that reaches the server.
func (s *Server) Arrivals() <-chan struct{} { return s.arrived }

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests is how many requests reached the server.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

type request struct {
	ChatID              json.RawMessage `json:"chat_id"`
	Text                string          `json:"text"`
	ParseMode           string          `json:"parse_mode"`
	DisableNotification bool            `json:"disable_notification"`
	ThreadID            int64           `json:"message_thread_id"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Reading the body first lets net/http notice a client that hangs up,
	// which cancels r.Context().
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.requests++
	hold := s.hold
	var reply *Reply
	if len(s.script) > 0 {
		reply = &s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	if reply != nil {
		switch {
		case reply.Hang:
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			return
		case reply.Drop:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		answer(w, reply.Status, reply.Body)
		return
	}

	if r.URL.Path != "/bot"+s.Token+"/sendMessage" {
		if strings.HasPrefix(r.URL.Path, "/bot"+s.Token+"/") {
			fail(w, http.StatusNotFound, "Not Found")
		} else {
			fail(w, http.StatusUnauthorized, "Unauthorized")
		}
		return
	}
	if r.Method != http.MethodPost {
		fail(w, http.StatusBadRequest, "Bad Request: method not allowed in this test server")
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		fail(w, http.StatusBadRequest, "Bad Request: invalid JSON")
		return
	}
	chat := strings.Trim(string(req.ChatID), `"`)
	switch {
	case chat == "" || chat == "null":
		fail(w, http.StatusBadRequest, "Bad Request: chat_id is empty")
		return
	case chat != s.ChatID:
		fail(w, http.StatusBadRequest, "Bad Request: chat not found")
		return
	}
	text := req.Text
	if req.ParseMode == "HTML" {
		plain, err := ParseHTML(req.Text)
		if err != nil {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse entities: "+err.Error())
			return
		}
		text = plain
	}
	switch n := len(utf16.Encode([]rune(text))); {
	case strings.TrimSpace(text) == "":
		fail(w, http.StatusBadRequest, "Bad Request: message text is empty")
		return
	case n > 4096:
		fail(w, http.StatusBadRequest, "Bad Request: message is too long")
		return
	}
	s.mu.Lock()
	m := Message{
		ID: len(s.messages) + 1, ChatID: chat, ThreadID: req.ThreadID, ParseMode: req.ParseMode,
		DisableNotification: req.DisableNotification, HTML: req.Text, Text: text,
	}
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"ok": true, "result": map[string]any{
		"message_id": m.ID, "date": time.Now().Unix(), "chat": map[string]any{"id": chat}, "text": text,
	}})
	answer(w, http.StatusOK, string(b))
}

func fail(w http.ResponseWriter, status int, description string) {
	b, _ := json.Marshal(map[string]any{"ok": false, "error_code": status, "description": description})
	answer(w, status, string(b))
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// tags are the Bot API's HTML tags.
var tags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true, "s": true, "strike": true,
	"del": true, "span": true, "tg-spoiler": true, "a": true, "code": true, "pre": true,
	"blockquote": true, "tg-emoji": true,
}

// ParseHTML returns the text a reader sees, or the error Telegram gives for
// an unsupported tag, an unmatched tag or a bare '&' or '<'.
func ParseHTML(s string) (string, error) {
	var out strings.Builder
	var open []string
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "", fmt.Errorf("Unclosed start tag at byte offset %d", i)
			}
			inner := s[i+1 : i+end]
			closing := strings.HasPrefix(inner, "/")
			name := strings.ToLower(strings.Fields(strings.TrimPrefix(inner, "/") + " ")[0])
			if !tags[name] {
				kind := "start"
				if closing {
					kind = "end"
				}
				return "", fmt.Errorf("Unsupported %s tag %q at byte offset %d", kind, name, i)
			}
			if closing {
				if len(open) == 0 || open[len(open)-1] != name {
					return "", fmt.Errorf("Unmatched end tag at byte offset %d", i)
				}
				open = open[:len(open)-1]
			} else {
				open = append(open, name)
			}
			i += end + 1
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 10 {
				return "", fmt.Errorf("Character entity expected at byte offset %d", i)
			}
			r, ok := entity(s[i+1 : i+end])
			if !ok {
				return "", fmt.Errorf("Unsupported HTML entity at byte offset %d", i)
			}
			out.WriteRune(r)
			i += end + 1
		default:
			out.WriteByte(s[i])
			i++
		}
	}
	if len(open) > 0 {
		return "", fmt.Errorf("Can't find end tag corresponding to start tag %q", open[len(open)-1])
	}
	return out.String(), nil
}

func entity(name string) (rune, bool) {
	switch name {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "quot":
		return '"', true
	}
	if strings.HasPrefix(name, "#") {
		base, digits := 10, name[1:]
		if strings.HasPrefix(digits, "x") || strings.HasPrefix(digits, "X") {
			base, digits = 16, digits[1:]
		}
		if n, err := strconv.ParseInt(digits, base, 32); err == nil && n > 0 {
			return rune(n), true
		}
	}
	return 0, false
}
