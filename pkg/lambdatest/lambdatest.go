// Package lambdatest runs a built Lambda `bootstrap` binary the way Lambda
// runs it — a fresh process with a clean environment that pulls its events
// from the Runtime API at AWS_LAMBDA_RUNTIME_API — against an in-process
// implementation of that API. Tests use it to invoke the real binaries, and
// the benchmark to time their cold starts.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const apiPrefix = "/2018-06-01/runtime"

// Options describe one function instance.
type Options struct {
	// Binary is the path of the bootstrap executable; it runs in its folder,
	// as Lambda runs it in /var/task.
	Binary string
	// Name is the function's name (AWS_LAMBDA_FUNCTION_NAME); default "function".
	Name string
	// Env is the function's own environment (its configuration). Nothing
	// from the calling process leaks in: Lambda's variables are added, as
	// Lambda adds them.
	Env map[string]string
	// Timeout is each invocation's deadline; default 30 s.
	Timeout time.Duration
}

// ErrorReport is what a function posts to an /error endpoint.
type ErrorReport struct {
	Message string   `json:"errorMessage"`
	Type    string   `json:"errorType"`
	Stack   []string `json:"stackTrace,omitempty"`
	// Header is the Lambda-Runtime-Function-Error-Type request header.
	Header string `json:"-"`
}

// InitError is returned by WaitReady when the function reported a failed
// start through /runtime/init/error.
type InitError struct{ Report ErrorReport }

func (e *InitError) Error() string { return "init error: " + e.Report.Message }

// Result is the outcome of one invocation: a response payload, or the
// function's error report.
type Result struct {
	Payload []byte
	Error   *ErrorReport
}

// Function is one running instance of a bootstrap binary and the Runtime API
// it talks to.
type Function struct {
	opts     Options
	listener net.Listener
	server   *http.Server
	cmd      *exec.Cmd
	started  time.Time
	logs     lockedBuffer

	queue   chan *invocation // waiting for /next
	exited  chan struct{}    // closed when the process has exited
	exitErr error

	mu        sync.Mutex
	readyAt   time.Time     // first /next
	ready     chan struct{} // closed at the first /next
	initErr   *ErrorReport  // from /init/error
	initDone  chan struct{} // closed when initErr is set
	inFlight  map[string]*invocation
	nextID    int
	closeOnce sync.Once
}

type invocation struct {
	id      string
	payload []byte
	done    chan Result
}

// Start starts the Runtime API on a loopback port and the binary against
// it. Stop must be called.
func Start(opts Options) (*Function, error) {
	if opts.Name == "" {
		opts.Name = "function"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API: %w", err)
	}
	f := &Function{
		opts:     opts,
		listener: ln,
		queue:    make(chan *invocation),
		exited:   make(chan struct{}),
		ready:    make(chan struct{}),
		initDone: make(chan struct{}),
		inFlight: map[string]*invocation{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", f.next)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", f.response)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", f.invocationError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", f.initError)
	f.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go f.server.Serve(ln)

	f.cmd = exec.Command(opts.Binary)
	f.cmd.Dir = filepath.Dir(opts.Binary)
	f.cmd.Env = f.environ()
	f.cmd.Stdout, f.cmd.Stderr = &f.logs, &f.logs
	f.started = time.Now()
	if err := f.cmd.Start(); err != nil {
		f.server.Close()
		return nil, fmt.Errorf("start %s: %w", opts.Binary, err)
	}
	go func() {
		f.exitErr = f.cmd.Wait()
		close(f.exited)
	}()
	return f, nil
}

// environ is the process environment Lambda gives a provided.al2023
// function, plus the function's own variables.
func (f *Function) environ() []string {
	env := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LANG":                            "en_US.UTF-8",
		"TZ":                              ":UTC",
		"LAMBDA_TASK_ROOT":                filepath.Dir(f.opts.Binary),
		"LAMBDA_RUNTIME_DIR":              "/var/runtime",
		"_HANDLER":                        "bootstrap",
		"AWS_REGION":                      "eu-central-1",
		"AWS_DEFAULT_REGION":              "eu-central-1",
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_FUNCTION_NAME":        f.opts.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + f.opts.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "local",
		"AWS_LAMBDA_RUNTIME_API":          f.listener.Addr().String(),
	}
	for k, v := range f.opts.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// Addr is the Runtime API's host:port (the AWS_LAMBDA_RUNTIME_API value).
func (f *Function) Addr() string { return f.listener.Addr().String() }

// WaitReady waits until the function asks for its first event and returns
// the time from process start to that request: the function's init time.
// It returns an *InitError when the function reported a failed start, and
// an error when the process exited first.
func (f *Function) WaitReady(ctx context.Context) (time.Duration, error) {
	select {
	case <-f.ready:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.readyAt.Sub(f.started), nil
	case <-f.initDone:
		return 0, &InitError{Report: *f.initErr}
	case <-f.exited:
		// An init error posted just before exit wins over the exit.
		select {
		case <-f.initDone:
			return 0, &InitError{Report: *f.initErr}
		default:
		}
		return 0, fmt.Errorf("exited before asking for an event (%v); output:\n%s", f.exitErr, f.Logs())
	case <-ctx.Done():
		return 0, fmt.Errorf("not ready: %w", ctx.Err())
	}
}

// Invoke hands event (JSON bytes, or a value to marshal) to the function and
// waits for its response or error report.
func (f *Function) Invoke(ctx context.Context, event any) (Result, error) {
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			return Result{}, fmt.Errorf("marshal event: %w", err)
		}
	}
	f.mu.Lock()
	f.nextID++
	inv := &invocation{id: "req-" + strconv.Itoa(f.nextID), payload: payload, done: make(chan Result, 1)}
	f.mu.Unlock()
	select {
	case f.queue <- inv:
	case <-f.exited:
		return Result{}, fmt.Errorf("function exited (%v); output:\n%s", f.exitErr, f.Logs())
	case <-ctx.Done():
		return Result{}, fmt.Errorf("function never asked for the event: %w", ctx.Err())
	}
	select {
	case r := <-inv.done:
		return r, nil
	case <-f.exited:
		return Result{}, fmt.Errorf("function exited during the invocation (%v); output:\n%s", f.exitErr, f.Logs())
	case <-ctx.Done():
		return Result{}, fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// Exited is closed when the process has exited.
func (f *Function) Exited() <-chan struct{} { return f.exited }

// ExitErr is the process's exit status once Exited is closed.
func (f *Function) ExitErr() error {
	<-f.exited
	return f.exitErr
}

// Logs returns everything the process wrote to stdout and stderr so far.
func (f *Function) Logs() string { return f.logs.String() }

// Stop kills the process (Lambda, too, ends an instance with SIGKILL) and
// shuts the Runtime API down.
func (f *Function) Stop() {
	f.closeOnce.Do(func() {
		if f.cmd.Process != nil {
			f.cmd.Process.Kill()
		}
		<-f.exited
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := f.server.Shutdown(ctx); err != nil {
			f.server.Close()
		}
	})
}

func (f *Function) next(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.readyAt.IsZero() {
		f.readyAt = time.Now()
		close(f.ready)
	}
	f.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-f.queue:
	case <-r.Context().Done():
		return
	}
	f.mu.Lock()
	f.inFlight[inv.id] = inv
	f.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(f.opts.Timeout).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-central-1:000000000000:function:"+f.opts.Name)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	w.WriteHeader(http.StatusOK)
	w.Write(inv.payload)
}

func (f *Function) take(id string) *invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv := f.inFlight[id]
	delete(f.inFlight, id)
	return inv
}

func (f *Function) response(w http.ResponseWriter, r *http.Request) {
	inv := f.take(r.PathValue("id"))
	if inv == nil {
		http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv.done <- Result{Payload: body}
	w.WriteHeader(http.StatusAccepted)
}

func (f *Function) invocationError(w http.ResponseWriter, r *http.Request) {
	inv := f.take(r.PathValue("id"))
	if inv == nil {
		http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
		return
	}
	rep := readReport(r)
	inv.done <- Result{Error: &rep}
	w.WriteHeader(http.StatusAccepted)
}

func (f *Function) initError(w http.ResponseWriter, r *http.Request) {
	rep := readReport(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.initErr != nil || !f.readyAt.IsZero() {
		// Lambda accepts one init error, and none once init is over.
		http.Error(w, `{"errorMessage":"init error already reported or init finished","errorType":"InvalidStateTransition"}`, http.StatusForbidden)
		return
	}
	f.initErr = &rep
	close(f.initDone)
	w.WriteHeader(http.StatusAccepted)
}

func readReport(r *http.Request) ErrorReport {
	var rep ErrorReport
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &rep); err != nil {
		rep.Message = string(body)
	}
	rep.Header = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	return rep
}

// lockedBuffer collects the process's output from two writers at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ErrNoResponse is returned by Decode when the invocation ended in an error
// report rather than a response.
var ErrNoResponse = errors.New("the function reported an error")

// Decode unmarshals a successful invocation's payload into v.
func (r Result) Decode(v any) error {
	if r.Error != nil {
		return fmt.Errorf("%w: %s: %s", ErrNoResponse, r.Error.Type, r.Error.Message)
	}
	return json.Unmarshal(r.Payload, v)
}
