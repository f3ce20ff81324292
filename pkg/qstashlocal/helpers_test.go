package qstashlocal

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upstash/qstash-go"
)

// start runs a Server for the test.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

// sdk is the real SDK's client pointed at srv. QSTASH_URL would override
// Options.Url (and could point at the real QStash), so it is cleared.
func sdk(t *testing.T, srv *Server) *qstash.Client {
	t.Helper()
	t.Setenv("QSTASH_URL", "")
	return qstash.NewClientWith(qstash.Options{Url: srv.URL(), Token: srv.Token()})
}

// received is one request that reached a sink.
type received struct {
	Method string
	URL    string // the full URL as the destination saw it
	Header http.Header
	Body   string
}

// reply is a sink's answer to its n-th request (from 0).
type reply func(n int, r received) (status int, header http.Header, body string)

func always(status int) reply {
	return func(int, received) (int, http.Header, string) { return status, nil, "" }
}

// sink is a test destination recording what it receives.
type sink struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []received
	reply reply
}

func newSink(t *testing.T, r reply) *sink {
	t.Helper()
	s := &sink{reply: r}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := received{Method: req.Method, URL: "http://" + req.Host + req.RequestURI, Header: req.Header.Clone(), Body: string(body)}
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, rec)
		s.mu.Unlock()
		status, h, b := s.reply(n, rec)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.reqs...)
}

// waitFor waits (at most 20 s) until cond holds.
func waitFor(t *testing.T, srv *Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.WaitUntil(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitAttempts waits until srv has recorded n attempts and returns them.
func waitAttempts(t *testing.T, srv *Server, n int) []Attempt {
	t.Helper()
	waitFor(t, srv, "attempts", func() bool { return len(srv.Attempts()) >= n })
	return srv.Attempts()
}

// rawPublish posts to srv's publish API without the SDK.
func rawPublish(t *testing.T, srv *Server, path string, header http.Header, body string) (int, string) {
	t.Helper()
	status, answer, err := post(srv, path, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, answer
}

// post sends a POST with srv's token unless header has an Authorization entry.
func post(srv *Server, path string, header http.Header, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if _, ok := req.Header["Authorization"]; !ok {
		req.Header.Set("Authorization", "Bearer "+srv.Token())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// manualNow is a start time for a ManualClock in whole seconds (the JWT's
// precision), so that times compare exactly.
func manualNow() time.Time { return time.Now().Truncate(time.Second) }
