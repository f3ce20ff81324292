// Package lambdahost runs the project's plain handlers on AWS Lambda: HTTP
// handlers behind a Function URL (payload format 2.0) and scheduled jobs
// behind EventBridge. It also reports start-up failures through the Runtime
// API's init-error call, which aws-lambda-go does not expose.
package lambdahost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Job is a scheduled job: the same function runs from EventBridge, from the
// local scheduler in `opsmantik dev` and from `opsmantik run <job>`. It is
// an alias, so that domain packages offer plain funcs and need not import
// this adapter.
type Job = func(ctx context.Context) error

// HTTP loads the configuration C, builds the handler and serves Function URL
// events with it until Lambda stops the process.
func HTTP[C any](build func(ctx context.Context, cfg *C) (http.Handler, error)) {
	ctx := context.Background()
	h, err := buildWith(ctx, build)
	if err != nil {
		InitError(err)
	}
	var opts []lambda.Option
	if s, ok := h.(interface{ Shutdown(context.Context) error }); ok {
		// Lambda sends SIGTERM before it reclaims the environment (to a
		// runtime with an extension, which this option registers) and
		// allows 500 ms: what the handler still holds is written then.
		opts = append(opts, lambda.WithEnableSIGTERM(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "shutdown: %v\n", err)
			}
		}))
	}
	lambda.StartWithOptions(FunctionURLHandler(h), opts...)
}

// FunctionURLHandler adapts h to Function URL events (payload format 2.0).
func FunctionURLHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}

// Schedule loads the configuration C, builds the job and runs it once per
// EventBridge event.
func Schedule[C any](build func(ctx context.Context, cfg *C) (Job, error)) {
	ctx := context.Background()
	job, err := buildWith(ctx, build)
	if err != nil {
		InitError(err)
	}
	lambda.Start(ScheduledHandler(job))
}

// ScheduledHandler adapts a job to EventBridge scheduled events.
func ScheduledHandler(job Job) func(context.Context, events.EventBridgeEvent) error {
	return func(ctx context.Context, _ events.EventBridgeEvent) error { return job(ctx) }
}

func buildWith[C, T any](ctx context.Context, build func(context.Context, *C) (T, error)) (T, error) {
	var cfg C
	var zero T
	if err := config.Load(ctx, &cfg); err != nil {
		return zero, err
	}
	return build(ctx, &cfg)
}

// InitError reports err as the function's init error through the Runtime API
// (when running under Lambda), prints it as one line and exits.
func InitError(err error) {
	fmt.Fprintln(os.Stderr, err)
	if api := os.Getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		if postErr := postInitError(api, err); postErr != nil {
			fmt.Fprintln(os.Stderr, "report init error:", postErr)
		}
	}
	os.Exit(1)
}

func postInitError(api string, err error) error {
	body, _ := json.Marshal(map[string]any{"errorMessage": err.Error(), "errorType": "InitError"})
	req, rerr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if rerr != nil {
		return rerr
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
	client := &http.Client{Timeout: 2 * time.Second}
	resp, rerr := client.Do(req)
	if rerr != nil {
		return rerr
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("runtime API answered %s", resp.Status)
	}
	return nil
}
