// Package testnotification is the operators' endpoint that sends a test
// message to the Telegram chat, to prove the alert channel works end to end.
// POST with Authorization: Bearer <CRON_SECRET> and an optional JSON body
// {"level": "info|warning|alarm|resolved", "message": "..."}.
//
// It is for curl and operators, not for browsers: it answers no CORS at all
// (no Access-Control-* headers, and a preflight is a 405 like any other
// method but POST), so that no web page can make a visitor's browser call
// it. Every request is logged on one line; a refused one at warning level
// with the reason, never with the secret it presented.
package testnotification

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// maxBody bounds the request body; a longer message is still split by the
// client, this only keeps the endpoint from reading without end.
const maxBody = 64 << 10

// Handler serves the test-notification endpoint.
type Handler struct {
	secret     [sha256.Size]byte
	configured bool
	sender     telegram.Sender
	logger     *slog.Logger
	now        func() time.Time
}

// New returns the handler. An empty secret keeps the endpoint closed: every
// request answers 503.
func New(secret config.Secret, sender telegram.Sender, logger *slog.Logger) *Handler {
	return &Handler{
		secret:     sha256.Sum256([]byte(secret)),
		configured: secret != "",
		sender:     sender,
		logger:     logger,
		now:        time.Now,
	}
}

// FromConfig builds the handler of functions/test-notification.
func FromConfig(_ context.Context, cfg *config.TestNotification) (http.Handler, error) {
	client, err := telegram.New(cfg.Telegram, telegram.Options{})
	if err != nil {
		return nil, err
	}
	logger := cfg.Log.Logger()
	if cfg.CronSecret == "" {
		logger.Warn("CRON_SECRET is not set: the test-notification endpoint answers 503")
	}
	return New(cfg.CronSecret, client, logger), nil
}

// Request is the optional JSON body.
type Request struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, level, id, err := h.serve(w, r)
	attrs := []any{"method", r.Method, "status", status, "remote_addr", r.RemoteAddr}
	if level != "" {
		attrs = append(attrs, "level", string(level))
	}
	if id != 0 {
		attrs = append(attrs, "message_id", id)
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	logLevel := slog.LevelInfo
	if status == http.StatusUnauthorized {
		logLevel = slog.LevelWarn // a failed attempt: operators may want to know
	}
	h.logger.Log(r.Context(), logLevel, "test notification", attrs...)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, telegram.Level, int, error) {
	if !h.configured {
		return reply(w, http.StatusServiceUnavailable, "CRON_SECRET is not configured"), "", 0, nil
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return reply(w, http.StatusMethodNotAllowed, "use POST"), "", 0, nil
	}
	if reason := h.refusal(r.Header.Get("Authorization")); reason != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="opsmantik"`)
		// The reason says what was wrong with the header, never what it held.
		return reply(w, http.StatusUnauthorized, "unauthorized"), "", 0, errors.New(reason)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return reply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody)), "", 0, err
	}
	level, message, err := ParseRequest(body)
	if err != nil {
		return reply(w, http.StatusBadRequest, err.Error()), "", 0, err
	}
	if message == "" {
		message = fmt.Sprintf("Test notification from OpsMantik at %s: alerts reach this chat.",
			h.now().UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	id, err := h.sender.SendMessage(r.Context(), message, level)
	if err != nil {
		description := err.Error()
		var tg *telegram.Error
		if errors.As(err, &tg) {
			description = tg.Description
		}
		return reply(w, http.StatusBadGateway, description), level, 0, err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message_id": id})
	return http.StatusOK, level, id, nil
}

// refusal compares the bearer token with the secret in constant time (both
// hashed first, so that not even the length leaks) and says why a request
// is refused, or "" when it is authorized.
func (h *Handler) refusal(header string) string {
	if strings.TrimSpace(header) == "" {
		return "no Authorization header"
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "Authorization is not a Bearer token"
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(got[:], h.secret[:]) != 1 {
		return "wrong secret"
	}
	return ""
}

// ParseRequest reads the optional body: empty means an info test with the
// default message.
func ParseRequest(body []byte) (telegram.Level, string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return telegram.Info, "", nil
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return "", "", fmt.Errorf("body must be JSON {\"level\": \"...\", \"message\": \"...\"}: %v", err)
	}
	if dec.More() {
		return "", "", errors.New("body must be one JSON object")
	}
	level := telegram.Info
	if req.Level != "" {
		l, err := telegram.ParseLevel(req.Level)
		if err != nil {
			return "", "", err
		}
		level = l
	}
	return level, strings.TrimSpace(req.Message), nil
}

func reply(w http.ResponseWriter, status int, message string) int {
	writeJSON(w, status, map[string]any{"ok": false, "error": message})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
