package qstashlocal

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"time"
)

// Message states, as QStash names them in its events.
const (
	StateCreated   = "CREATED"   // accepted, waiting for its first attempt (delay, not-before)
	StateActive    = "ACTIVE"    // an attempt is in flight
	StateRetry     = "RETRY"     // failed, waiting for the next attempt
	StateDelivered = "DELIVERED" // a 2xx answered
	StateFailed    = "FAILED"    // retries exhausted or a non-retryable answer: in the dead-letter list
)

// Outcomes of an attempt.
const (
	OutcomeDelivered = "delivered" // 2xx
	OutcomeRetry     = "retry"     // failed, another attempt is scheduled
	OutcomeDead      = "dead"      // failed, the message went to the dead-letter list
	OutcomeAborted   = "aborted"   // the server was closed during the attempt
)

// Publish is one request to the publish API, whatever its answer.
type Publish struct {
	At           time.Time
	Status       int    // the answer's status code
	Error        string // the answer's error, for a 4xx
	MessageID    string
	Deduplicated bool
	Destination  string
	Header       http.Header // as received, without Authorization
	Body         []byte
}

// Attempt is one delivery attempt of a message.
type Attempt struct {
	MessageID string
	// FailureCallbackFor is the source message's id when this message is a
	// failure callback.
	FailureCallbackFor string
	URL                string
	Method             string
	Retried            int         // the Upstash-Retried sent: 0 on the first attempt
	At                 time.Time   // on the server's clock
	Header             http.Header // the request's headers, signature included
	Body               []byte
	Status             int    // the answer's status code; 0 when there was none
	Err                string // the network error or timeout, when there was no answer
	ResponseHeader     http.Header
	ResponseBody       []byte // at most 64 KiB
	Outcome            string
	RetryAfter         string        // the answer header that set NextDelay, e.g. "Retry-After: 30"
	NextDelay          time.Duration // the wait before the next attempt (before Scale) when Outcome is retry
}

// DeadLetter is a message that failed for good.
type DeadLetter struct {
	DlqID              string
	MessageID          string
	FailureCallbackFor string
	URL                string
	Method             string
	Header             http.Header // sent to the destination (Content-Type, forwarded headers)
	Body               []byte
	MaxRetries         int
	Retried            int
	CreatedAt          time.Time
	At                 time.Time // when it failed
	ResponseStatus     int
	ResponseHeader     http.Header
	ResponseBody       []byte
	Err                string
	FailureCallback    string // the Upstash-Failure-Callback URL, if any
}

// Message is the state of an accepted message.
type Message struct {
	ID                 string
	FailureCallbackFor string
	URL                string
	Method             string
	Header             http.Header
	Body               []byte
	MaxRetries         int
	Retried            int // retries made so far
	NotBefore          time.Time
	CreatedAt          time.Time
	FailureCallback    string
	State              string
}

// Publishes returns every publish request so far, in arrival order.
func (s *Server) Publishes() []Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.publishes)
	for i := range out {
		out[i].Header = out[i].Header.Clone()
		out[i].Body = bytes.Clone(out[i].Body)
	}
	return out
}

// Attempts returns every delivery attempt so far, in the order they ended.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.attempts)
	for i := range out {
		out[i].Header = out[i].Header.Clone()
		out[i].Body = bytes.Clone(out[i].Body)
		out[i].ResponseHeader = out[i].ResponseHeader.Clone()
		out[i].ResponseBody = bytes.Clone(out[i].ResponseBody)
	}
	return out
}

// AttemptsOf returns the attempts of one message, in order.
func (s *Server) AttemptsOf(messageID string) []Attempt {
	var out []Attempt
	for _, a := range s.Attempts() {
		if a.MessageID == messageID {
			out = append(out, a)
		}
	}
	return out
}

// DeadLetters returns the dead-letter list, oldest first.
func (s *Server) DeadLetters() []DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.dead)
	for i := range out {
		out[i].Header = out[i].Header.Clone()
		out[i].Body = bytes.Clone(out[i].Body)
		out[i].ResponseHeader = out[i].ResponseHeader.Clone()
		out[i].ResponseBody = bytes.Clone(out[i].ResponseBody)
	}
	return out
}

// Messages returns every accepted message (failure callbacks included), in
// the order they were accepted.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.messages[id].snapshot())
	}
	return out
}

// Message returns one message's state.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return m.snapshot(), true
}

// WaitUntil returns once cond() is true, checking it now and after every
// change to the records (publish, attempt, dead letter), or ctx's error when
// ctx ends first. cond may call the accessors above.
func (s *Server) WaitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-changed:
		}
	}
}

// Idle reports whether every accepted message is delivered or failed.
func (s *Server) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.state != StateDelivered && m.state != StateFailed {
			return false
		}
	}
	return true
}

// WaitIdle waits until every accepted message is delivered or failed.
func (s *Server) WaitIdle(ctx context.Context) error {
	return s.WaitUntil(ctx, s.Idle)
}

// notifyLocked wakes WaitUntil callers; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}
