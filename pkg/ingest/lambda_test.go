package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/opsmantik/opsmantik/pkg/lambdahost"
)

// functionURLEvent is a Function URL invocation (payload format 2.0) as
// Lambda delivers it.
func functionURLEvent(t *testing.T, method string, body []byte, base64Body bool, header map[string]string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	headers := map[string]string{
		"content-type": "text/plain;charset=UTF-8",
		"user-agent":   browserUA,
		"origin":       origin,
		"host":         "abc123.lambda-url.eu-central-1.on.aws",
	}
	for k, v := range header {
		headers[strings.ToLower(k)] = v
	}
	text := string(body)
	if base64Body {
		text = base64.StdEncoding.EncodeToString(body)
	}
	raw, _ := json.Marshal(map[string]any{
		"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
		"headers": headers,
		"requestContext": map[string]any{
			"accountId": "anonymous", "apiId": "abc123", "domainName": "abc123.lambda-url.eu-central-1.on.aws",
			"domainPrefix": "abc123", "requestId": "req-1", "routeKey": "$default", "stage": "$default",
			"time": "25/Nov/2026:12:00:00 +0000", "timeEpoch": testNow.UnixMilli(),
			"http": map[string]any{"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": headers["user-agent"]},
		},
		"body": text, "isBase64Encoded": base64Body,
	})
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestLambdaAnswersAsTheHTTPServer sends the same requests to the handler
// over HTTP and through the Function URL adapter (each with its own
// database) and expects the same answers.
func TestLambdaAnswersAsTheHTTPServer(t *testing.T) {
	overHTTP, overLambda := newEnv(t), newEnv(t)
	lambda := lambdahost.FunctionURLHandler(overLambda.handler)
	requests := []struct {
		name   string
		method string
		body   []byte
		header map[string]string
	}{
		{"a batch", "POST", body(t, map[string]any{"events": []any{event(1, "pageview", testNow, nil), event(2, "heartbeat", testNow, map[string]any{"active_ms": 1})}}), nil},
		{"the batch again", "POST", body(t, map[string]any{"events": []any{event(1, "pageview", testNow, nil), event(2, "heartbeat", testNow, map[string]any{"active_ms": 1})}}), nil},
		{"non-ASCII", "POST", body(t, map[string]any{"events": []any{event(3, "pageview", testNow, map[string]any{"title": "Ürünler — İstanbul 🚀"})}}), nil},
		{"broken JSON", "POST", []byte(`{"v":`), nil},
		{"unknown site", "POST", body(t, map[string]any{"site": "other"}), nil},
		{"foreign origin", "POST", body(t, nil), map[string]string{"Origin": "https://evil.example"}},
		{"too large", "POST", padTo(t, MaxBodyBytes+1), nil},
		{"health", "GET", nil, nil},
		{"preflight", "OPTIONS", nil, nil},
		{"wrong method", "PATCH", nil, nil},
	}
	for _, base64Body := range []bool{false, true} {
		for _, rq := range requests {
			t.Run(fmt.Sprintf("%s base64=%v", rq.name, base64Body), func(t *testing.T) {
				want := overHTTP.do(t, rq.method, rq.body, rq.header)
				got, err := lambda(context.Background(), functionURLEvent(t, rq.method, rq.body, base64Body, rq.header))
				if err != nil {
					t.Fatal(err)
				}
				respBody := got.Body
				if got.IsBase64Encoded {
					b, _ := base64.StdEncoding.DecodeString(got.Body)
					respBody = string(b)
				}
				if got.StatusCode != want.status || respBody != want.raw {
					t.Fatalf("Lambda answered %d %q, HTTP answered %d %q", got.StatusCode, respBody, want.status, want.raw)
				}
				for _, h := range []string{"Content-Type", "Access-Control-Allow-Origin", "Allow", "Access-Control-Allow-Methods"} {
					if lh := http.Header(got.MultiValueHeaders).Get(h); lh != want.header.Get(h) && got.Headers[h] != want.header.Get(h) {
						t.Fatalf("header %s: Lambda %q (%v), HTTP %q", h, lh, got.Headers, want.header.Get(h))
					}
				}
			})
		}
		// Both hosts stored the same rows.
		if h, l := overHTTP.count(t, `SELECT count(*) FROM events`), overLambda.count(t, `SELECT count(*) FROM events`); h != 2 || l != 2 {
			t.Fatalf("events stored: %d over HTTP, %d through Lambda; want 2", h, l)
		}
		// Each pass starts over on fresh data so that the answers match again.
		for _, e := range []*testEnv{overHTTP, overLambda} {
			if _, err := e.pool.Exec(context.Background(), `TRUNCATE events, sessions, ingest_counters`); err != nil {
				t.Fatal(err)
			}
		}
	}
}
