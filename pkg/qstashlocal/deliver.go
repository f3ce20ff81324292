package qstashlocal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// maxResponseBody is how much of a destination's answer is kept.
const maxResponseBody = 64 << 10

// message is an accepted message; id, url, method, header, body, maxRetries,
// notBefore, createdAt, failureCallback, callerIP and timeout never change
// after it is accepted. retried and state are guarded by Server.mu.
type message struct {
	id                 string
	failureCallbackFor string
	url                string
	method             string
	header             http.Header
	body               []byte
	maxRetries         int
	notBefore          time.Time
	createdAt          time.Time
	failureCallback    string
	callerIP           string
	timeout            time.Duration

	retried int
	state   string
}

func (m *message) snapshot() Message {
	return Message{
		ID: m.id, FailureCallbackFor: m.failureCallbackFor, URL: m.url, Method: m.method,
		Header: m.header.Clone(), Body: bytes.Clone(m.body), MaxRetries: m.maxRetries, Retried: m.retried,
		NotBefore: m.notBefore, CreatedAt: m.createdAt, FailureCallback: m.failureCallback, State: m.state,
	}
}

// FailureCallbackBody is the JSON body QStash posts to a message's
// Upstash-Failure-Callback once it has failed for good.
type FailureCallbackBody struct {
	Status          int         `json:"status"`     // the last answer's status; 0 without one
	Header          http.Header `json:"header"`     // the last answer's headers
	Body            string      `json:"body"`       // the last answer's body, base64
	Retried         int         `json:"retried"`    // retries made
	MaxRetries      int         `json:"maxRetries"` // retries allowed
	DlqID           string      `json:"dlqId"`
	SourceMessageID string      `json:"sourceMessageId"`
	URL             string      `json:"url"`
	Method          string      `json:"method"`
	SourceHeader    http.Header `json:"sourceHeader"`
	SourceBody      string      `json:"sourceBody"` // base64
	NotBefore       int64       `json:"notBefore"`  // unix milliseconds
	CreatedAt       int64       `json:"createdAt"`  // unix milliseconds
	CallerIP        string      `json:"callerIP"`
}

// addLocked registers m and schedules its first attempt after wait.
func (s *Server) addLocked(m *message, wait time.Duration) {
	s.messages[m.id] = m
	s.order = append(s.order, m.id)
	s.scheduleLocked(m, wait)
}

// scheduleLocked arranges the next attempt of m after wait (before Scale).
func (s *Server) scheduleLocked(m *message, wait time.Duration) {
	if s.closed {
		return
	}
	scaled := math.Min(float64(max(wait, 0))/s.scale, math.MaxInt64) // a Scale below 1 stretches waits
	id := m.id
	s.timers[id] = s.clock.AfterFunc(time.Duration(scaled), func() { s.fire(id) })
}

// fire runs an attempt of the message whose wait has ended.
func (s *Server) fire(id string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	delete(s.timers, id)
	m := s.messages[id]
	m.state = StateActive
	retried := m.retried
	key := s.current
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.attempt(m, retried, key)
}

// attempt delivers m once and decides what follows: done, a retry after the
// back-off or the answer's Retry-After, or the dead-letter list.
func (s *Server) attempt(m *message, retried int, key string) {
	at := s.clock.Now()
	a := Attempt{
		MessageID: m.id, FailureCallbackFor: m.failureCallbackFor, URL: m.url, Method: m.method,
		Retried: retried, At: at, Body: m.body,
	}
	resp, err := s.send(m, retried, key, at, &a)
	if err != nil {
		a.Err = err.Error()
	} else {
		a.Status, a.ResponseHeader, a.ResponseBody = resp.status, resp.header, resp.body
	}
	delivered := err == nil && a.Status >= 200 && a.Status < 300
	nonRetryable := err == nil && a.Status == nonRetryableStatus && a.ResponseHeader.Get("Upstash-NonRetryable-Error") == "true"

	s.mu.Lock()
	switch {
	case s.closed:
		a.Outcome = OutcomeAborted
	case delivered:
		a.Outcome = OutcomeDelivered
		m.state = StateDelivered
	case nonRetryable || retried >= m.maxRetries:
		a.Outcome = OutcomeDead
		m.state = StateFailed
		s.deadLocked(m, retried, a)
	default:
		// Schedule before recording, so that whoever waits for this attempt
		// finds the next one already arranged on the clock.
		delay, why, ok := retryAfter(a.ResponseHeader, s.clock.Now())
		if !ok {
			delay = backoff(retried + 1)
		}
		a.Outcome, a.RetryAfter, a.NextDelay = OutcomeRetry, why, delay
		m.retried = retried + 1
		m.state = StateRetry
		s.scheduleLocked(m, delay)
	}
	s.attempts = append(s.attempts, a)
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Info("qstashlocal delivery attempt", "message_id", m.id, "url", m.url, "retried", retried,
		"status", a.Status, "error", a.Err, "outcome", a.Outcome, "next_delay", a.NextDelay)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// send makes the HTTP request of one attempt; a.Header records what was sent.
func (s *Server) send(m *message, retried int, key string, at time.Time, a *Attempt) (*answer, error) {
	sig, err := Sign(key, m.url, m.body, at)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, m.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, m.method, m.url, bytes.NewReader(m.body))
	if err != nil {
		return nil, err
	}
	req.Header = m.header.Clone()
	req.Header.Set("User-Agent", "Upstash-QStash")
	req.Header.Set("Upstash-Signature", sig)
	req.Header.Set("Upstash-Message-Id", m.id)
	req.Header.Set("Upstash-Retried", strconv.Itoa(retried))
	req.Header.Set("Upstash-Caller-Ip", m.callerIP)
	a.Header = req.Header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// deadLocked puts m in the dead-letter list and, when it has one, publishes
// its failure callback.
func (s *Server) deadLocked(m *message, retried int, last Attempt) {
	now := s.clock.Now()
	dl := DeadLetter{
		DlqID: strconv.FormatInt(now.UnixMilli(), 10) + "-" + randomID(8), MessageID: m.id,
		FailureCallbackFor: m.failureCallbackFor, URL: m.url, Method: m.method,
		Header: m.header.Clone(), Body: m.body, MaxRetries: m.maxRetries, Retried: retried,
		CreatedAt: m.createdAt, At: now, ResponseStatus: last.Status, ResponseHeader: last.ResponseHeader,
		ResponseBody: last.ResponseBody, Err: last.Err, FailureCallback: m.failureCallback,
	}
	s.dead = append(s.dead, dl)
	if m.failureCallback == "" {
		return
	}
	body, _ := json.Marshal(FailureCallbackBody{
		Status: last.Status, Header: last.ResponseHeader, Body: base64.StdEncoding.EncodeToString(last.ResponseBody),
		Retried: retried, MaxRetries: m.maxRetries, DlqID: dl.DlqID, SourceMessageID: m.id,
		URL: m.url, Method: m.method, SourceHeader: m.header, SourceBody: base64.StdEncoding.EncodeToString(m.body),
		NotBefore: m.notBefore.UnixMilli(), CreatedAt: m.createdAt.UnixMilli(), CallerIP: m.callerIP,
	})
	// QStash delivers the callback as a message of its own, signed for the
	// callback URL, with the source message's retry setting.
	cb := &message{
		id: "msg_" + randomID(27), failureCallbackFor: m.id, url: m.failureCallback, method: http.MethodPost,
		header: http.Header{"Content-Type": {"application/json"}}, body: body, maxRetries: m.maxRetries,
		notBefore: now, createdAt: now, callerIP: m.callerIP, timeout: m.timeout, state: StateCreated,
	}
	s.addLocked(cb, 0)
}
