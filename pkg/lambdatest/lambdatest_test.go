package lambdatest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
)

// The test binary doubles as the Lambda function: started with
// LAMBDATEST_ROLE set, it plays that role instead of running the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("LAMBDATEST_ROLE") {
	case "":
		os.Exit(m.Run())
	case "echo":
		lambda.Start(func(ctx context.Context, ev map[string]any) (map[string]any, error) {
			if ev["fail"] == true {
				return nil, errors.New("asked to fail")
			}
			env := map[string]bool{}
			for _, kv := range os.Environ() {
				k, _, _ := strings.Cut(kv, "=")
				env[k] = true
			}
			return map[string]any{"echo": ev, "env": env}, nil
		})
	case "http":
		mux := http.NewServeMux()
		mux.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Seen", r.Header.Get("X-Custom")+"|"+r.URL.RawQuery)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "got %s", b)
		})
		lambda.Start(lambdahost.FunctionURLHandler(mux))
	case "schedule":
		type cfg struct {
			Outcome int `env:"JOB_OUTCOME, default=0"`
		}
		lambdahost.Schedule(func(_ context.Context, c *cfg) (lambdahost.Job, error) {
			return func(context.Context) error {
				if c.Outcome != 0 {
					return fmt.Errorf("job failed with %d", c.Outcome)
				}
				return nil
			}, nil
		})
	case "init-error":
		lambdahost.InitError(errors.New("configuration: SOME_VAR: broken"))
	case "exit":
		os.Exit(3)
	}
}

func start(t *testing.T, role string, env map[string]string) *lambdatest.Function {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["LAMBDATEST_ROLE"] = role
	f, err := lambdatest.Start(lambdatest.Options{Binary: os.Args[0], Name: role, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestInvokeReturnsResponsesAndErrorsFromOneWarmProcess(t *testing.T) {
	t.Setenv("LAMBDATEST_LEAK", "1")
	f := start(t, "echo", map[string]string{"APP_SETTING": "x"})
	if d, err := f.WaitReady(ctx(t)); err != nil || d <= 0 {
		t.Fatalf("WaitReady = %v, %v", d, err)
	}
	res, err := f.Invoke(ctx(t), map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Echo map[string]any  `json:"echo"`
		Env  map[string]bool `json:"env"`
	}
	if err := res.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Echo["n"] != 1.0 {
		t.Errorf("echo = %v", out.Echo)
	}
	for _, k := range []string{"APP_SETTING", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT"} {
		if !out.Env[k] {
			t.Errorf("the function lacks %s", k)
		}
	}
	if out.Env["LAMBDATEST_LEAK"] {
		t.Error("the caller's environment leaked into the function")
	}

	res, err = f.Invoke(ctx(t), []byte(`{"fail":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || res.Error.Message != "asked to fail" || res.Decode(&out) == nil {
		t.Errorf("failing invocation = %+v, want the function's error report", res)
	}
}

func TestFunctionURLEventsRoundTripThroughTheAdapter(t *testing.T) {
	f := start(t, "http", nil)
	req, _ := http.NewRequest(http.MethodPost, "https://x.lambda-url.eu-central-1.on.aws/things?a=1", strings.NewReader("hello"))
	req.Header.Set("X-Custom", "v")
	ev, err := lambdatest.FunctionURLEvent(req)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Invoke(ctx(t), ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lambdatest.HTTPResponse(res)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(body) != "got hello" || resp.Header.Get("X-Seen") != "v|a=1" {
		t.Errorf("response %d %q, X-Seen %q", resp.StatusCode, body, resp.Header.Get("X-Seen"))
	}
}

func TestInitErrorIsReportedThroughTheRuntimeAPI(t *testing.T) {
	f := start(t, "init-error", nil)
	_, err := f.WaitReady(ctx(t))
	var ie *lambdatest.InitError
	if !errors.As(err, &ie) || !strings.Contains(ie.Report.Message, "SOME_VAR") || ie.Report.Header != "Runtime.InitError" {
		t.Fatalf("WaitReady = %v, want an init error naming SOME_VAR", err)
	}
	if f.ExitErr() == nil {
		t.Error("exit status 0 after an init error")
	}
}

func TestExitBeforeReadyIsAnError(t *testing.T) {
	f := start(t, "exit", nil)
	_, err := f.WaitReady(ctx(t))
	var ie *lambdatest.InitError
	if err == nil || errors.As(err, &ie) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("WaitReady = %v, want the exit status", err)
	}
}

func TestScheduledEventIsWhatEventBridgeSends(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b, _ := json.Marshal(lambdatest.ScheduledEvent("watchtower", at))
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || !ev.Time.Equal(at) || string(ev.Detail) != "{}" {
		t.Errorf("event %s", b)
	}
}

func TestScheduledJobsRunOncePerEventAndReportFailures(t *testing.T) {
	for _, c := range []struct {
		outcome string
		wantErr string
	}{{"0", ""}, {"7", "job failed with 7"}} {
		f := start(t, "schedule", map[string]string{"JOB_OUTCOME": c.outcome})
		res, err := f.Invoke(ctx(t), lambdatest.ScheduledEvent("rule", time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.wantErr == "" && (res.Error != nil || string(res.Payload) != "null"):
			t.Errorf("outcome %s: result %+v, want success", c.outcome, res)
		case c.wantErr != "" && (res.Error == nil || res.Error.Message != c.wantErr):
			t.Errorf("outcome %s: result %+v, want the error %q", c.outcome, res, c.wantErr)
		}
	}
}

func TestScheduleReportsMalformedConfigurationNamingTheVariable(t *testing.T) {
	f := start(t, "schedule", map[string]string{"JOB_OUTCOME": "abc"})
	_, err := f.WaitReady(ctx(t))
	var ie *lambdatest.InitError
	if !errors.As(err, &ie) || !strings.Contains(ie.Report.Message, "JOB_OUTCOME") {
		t.Fatalf("WaitReady = %v, want an init error naming JOB_OUTCOME", err)
	}
}
