package qstashlocal

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxRetries     = 5
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxDelay       = 7 * 24 * time.Hour
	DefaultAttemptTimeout = 30 * time.Second
	DedupWindow           = 10 * time.Minute
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Addr is where to listen; default 127.0.0.1:0 (a free port).
	Addr string
	// Token is the bearer token publishers must send; default a random one.
	Token string
	// CurrentSigningKey and NextSigningKey sign deliveries; default random
	// sig_… keys.
	CurrentSigningKey, NextSigningKey string
	// Clock is where time is read and waits are scheduled; default the wall
	// clock. Tests of exact times pass a *ManualClock.
	Clock Clock
	// Scale divides every wait of the delivery schedule (Upstash-Delay,
	// Upstash-Not-Before, back-off, Retry-After) before it is handed to the
	// Clock: with 1000, the 12 s first back-off takes 12 ms. The records keep
	// the unscaled waits; the dedup window, signature lifetimes and attempt
	// timeouts are not scaled. Default 1.
	Scale float64
	// Client sends the deliveries; default one that follows no redirects (a
	// 3xx is a failed attempt).
	Client *http.Client
	// MaxRetries is the plan's limit for Upstash-Retries, and the retries of a
	// message published without it; default 5.
	MaxRetries int
	// MaxBodyBytes is the largest message body; default 1 MiB (413 beyond).
	MaxBodyBytes int64
	// MaxDelay is the furthest a message can be delayed; default 7 days.
	MaxDelay time.Duration
	// AttemptTimeout is how long one attempt may take, and the largest
	// Upstash-Timeout; default 30 s.
	AttemptTimeout time.Duration
	// Logger logs each publish and attempt (never the token, keys or
	// signatures); default none.
	Logger *slog.Logger
}

// limits are the publish limits parsePublish checks.
type limits struct {
	maxRetries     int
	maxDelay       time.Duration
	attemptTimeout time.Duration
}

// Server is a running local QStash.
type Server struct {
	token     string
	clock     Clock
	scale     float64
	client    *http.Client
	ownClient bool // client was made here: Close closes its idle connections
	log       *slog.Logger
	lim       limits
	maxBody   int64
	url       string
	listener  net.Listener
	http      *http.Server
	serveErr  chan error

	ctx    context.Context // ends when the server closes: in-flight attempts are cancelled
	cancel context.CancelFunc
	wg     sync.WaitGroup // in-flight attempts

	mu        sync.Mutex
	closed    bool
	current   string
	next      string
	messages  map[string]*message
	order     []string
	timers    map[string]Timer // pending wait per message id
	dedup     map[string]dedupEntry
	publishes []Publish
	attempts  []Attempt
	dead      []DeadLetter
	changed   chan struct{}
}

type dedupEntry struct {
	messageID string
	at        time.Time
}

// New starts a local QStash listening on opts.Addr.
func New(opts Options) (*Server, error) {
	if opts.Scale == 0 {
		opts.Scale = 1
	}
	if opts.Scale < 0 || math.IsNaN(opts.Scale) || math.IsInf(opts.Scale, 0) {
		return nil, fmt.Errorf("qstashlocal: Scale %v: want a positive number", opts.Scale)
	}
	if opts.MaxRetries < 0 || opts.MaxBodyBytes < 0 || opts.MaxDelay < 0 || opts.AttemptTimeout < 0 {
		return nil, errors.New("qstashlocal: negative limit in Options")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Token == "" {
		opts.Token = "qstashlocal_" + randomID(32)
	}
	if opts.CurrentSigningKey == "" {
		opts.CurrentSigningKey = "sig_" + randomID(28)
	}
	if opts.NextSigningKey == "" {
		opts.NextSigningKey = "sig_" + randomID(28)
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ownClient := opts.Client == nil
	if ownClient {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64 // many deliveries to one destination at once
		opts.Client = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("qstashlocal: listen on %s: %w", opts.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		token:     opts.Token,
		clock:     opts.Clock,
		scale:     opts.Scale,
		client:    opts.Client,
		ownClient: ownClient,
		log:       opts.Logger,
		lim:       limits{maxRetries: opts.MaxRetries, maxDelay: opts.MaxDelay, attemptTimeout: opts.AttemptTimeout},
		maxBody:   opts.MaxBodyBytes,
		url:       "http://" + ln.Addr().String(),
		listener:  ln,
		serveErr:  make(chan error, 1),
		ctx:       ctx,
		cancel:    cancel,
		current:   opts.CurrentSigningKey,
		next:      opts.NextSigningKey,
		messages:  map[string]*message{},
		timers:    map[string]Timer{},
		dedup:     map[string]dedupEntry{},
		changed:   make(chan struct{}),
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErr <- s.http.Serve(ln) }()
	return s, nil
}

// URL is the server's base URL, for qstash.Options.Url or QSTASH_URL.
func (s *Server) URL() string { return s.url }

// Token is the bearer token the publish API accepts.
func (s *Server) Token() string { return s.token }

// CurrentSigningKey signs the deliveries.
func (s *Server) CurrentSigningKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// NextSigningKey becomes the current key at the next rotation.
func (s *Server) NextSigningKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// RotateSigningKeys makes the next key current and draws a new next key, as
// QStash's key rotation does; it returns the new pair. POST /v2/rotate does
// the same.
func (s *Server) RotateSigningKeys() (current, next string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current, s.next = s.next, "sig_"+randomID(28)
	return s.current, s.next
}

// Close stops the server: no new publishes, pending waits are dropped,
// in-flight attempts are cancelled and awaited.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for id, t := range s.timers {
		t.Stop()
		delete(s.timers, id)
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.wg.Wait()
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
	if serr := <-s.serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("qstashlocal: close: %w", err)
	}
	return nil
}

// ServeHTTP answers the API: POST /v2/publish/{destination}, GET /v2/keys and
// POST /v2/rotate, each with the bearer token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isPublish := strings.HasPrefix(r.RequestURI, publishPrefix) || r.URL.Path == "/v2/publish"
	if !s.authorized(r) {
		msg := "unauthorized: missing or invalid bearer token in the Authorization header"
		if isPublish {
			s.recordPublish(r, nil, http.StatusUnauthorized, msg, "", false, "")
		}
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	switch {
	case isPublish:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			s.recordPublish(r, nil, http.StatusMethodNotAllowed, "publish wants POST", "", false, "")
			writeError(w, http.StatusMethodNotAllowed, "publish wants POST")
			return
		}
		s.publish(w, r)
	case r.URL.Path == "/v2/keys" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"current": s.CurrentSigningKey(), "next": s.NextSigningKey()})
	case r.URL.Path == "/v2/rotate" && r.Method == http.MethodPost:
		cur, next := s.RotateSigningKeys()
		writeJSON(w, http.StatusOK, map[string]string{"current": cur, "next": next})
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s is not part of qstashlocal (it imitates POST /v2/publish/{destination}, GET /v2/keys and POST /v2/rotate)", r.Method, r.URL.Path))
	}
}

func (s *Server) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) == 1
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			msg := fmt.Sprintf("message size exceeds the limit of %d bytes", s.maxBody)
			s.recordPublish(r, nil, http.StatusRequestEntityTooLarge, msg, "", false, "")
			writeError(w, http.StatusRequestEntityTooLarge, msg)
			return
		}
		s.recordPublish(r, nil, http.StatusBadRequest, "read body: "+err.Error(), "", false, "")
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	dest, err := destinationOf(r.RequestURI)
	var p *publishRequest
	if err == nil {
		p, err = parsePublish(r.Header, dest, body, s.clock.Now(), s.lim)
	}
	if err != nil {
		status, msg := http.StatusBadRequest, err.Error()
		var br *badRequest
		if errors.As(err, &br) {
			status = br.status
		}
		s.recordPublish(r, body, status, msg, "", false, dest)
		writeError(w, status, msg)
		return
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "qstashlocal is closing")
		return
	}
	now := s.clock.Now()
	if p.dedupKey != "" {
		if e, ok := s.dedup[p.dedupKey]; ok && now.Sub(e.at) < DedupWindow {
			s.recordPublishLocked(r, body, http.StatusAccepted, "", e.messageID, true, dest, now)
			s.mu.Unlock()
			s.log.Info("qstashlocal publish deduplicated", "message_id", e.messageID, "url", dest)
			writeJSON(w, http.StatusAccepted, publishAnswer{MessageID: e.messageID, Deduplicated: true})
			return
		}
	}
	m := &message{
		id:              "msg_" + randomID(27),
		url:             dest,
		method:          p.method,
		header:          p.header,
		body:            body,
		maxRetries:      p.retries,
		notBefore:       p.notBefore,
		createdAt:       now,
		failureCallback: p.failureCallback,
		callerIP:        callerIP(r),
		timeout:         p.timeout,
		state:           StateCreated,
	}
	if p.dedupKey != "" {
		s.dedup[p.dedupKey] = dedupEntry{messageID: m.id, at: now}
	}
	s.addLocked(m, p.notBefore.Sub(now))
	s.recordPublishLocked(r, body, http.StatusOK, "", m.id, false, dest, now)
	s.mu.Unlock()
	s.log.Info("qstashlocal publish", "message_id", m.id, "url", dest, "retries", m.maxRetries, "not_before", m.notBefore)
	writeJSON(w, http.StatusOK, publishAnswer{MessageID: m.id, Deduplicated: false})
}

type publishAnswer struct {
	MessageID    string `json:"messageId"`
	Deduplicated bool   `json:"deduplicated"`
}

func callerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) recordPublish(r *http.Request, body []byte, status int, errMsg, id string, dedup bool, dest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordPublishLocked(r, body, status, errMsg, id, dedup, dest, s.clock.Now())
}

func (s *Server) recordPublishLocked(r *http.Request, body []byte, status int, errMsg, id string, dedup bool, dest string, now time.Time) {
	h := r.Header.Clone()
	h.Del("Authorization")
	s.publishes = append(s.publishes, Publish{
		At: now, Status: status, Error: errMsg, MessageID: id, Deduplicated: dedup,
		Destination: dest, Header: h, Body: bytes.Clone(body),
	})
	s.notifyLocked()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers as QStash does: {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
