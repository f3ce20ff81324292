package lambdatest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// FunctionURLEvent is the event a Lambda Function URL sends for req
// (payload format 2.0): lower-case header names, repeated headers joined by
// commas, a text body as is and any other body base64-encoded.
func FunctionURLEvent(req *http.Request) (events.LambdaFunctionURLRequest, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return events.LambdaFunctionURLRequest{}, err
		}
	}
	headers := map[string]string{}
	for k, vs := range req.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" {
		host = "abcdefghij.lambda-url.eu-central-1.on.aws"
	}
	headers["host"] = host
	now := time.Now().UTC()
	ev := events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        req.URL.EscapedPath(),
		RawQueryString: req.URL.RawQuery,
		Headers:        headers,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    fmt.Sprintf("url-%d", now.UnixNano()),
			APIID:        strings.SplitN(host, ".", 2)[0],
			DomainName:   host,
			DomainPrefix: strings.SplitN(host, ".", 2)[0],
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    req.Method,
				Path:      req.URL.Path,
				Protocol:  "HTTP/1.1",
				SourceIP:  "203.0.113.10",
				UserAgent: req.UserAgent(),
			},
		},
	}
	if ev.RawPath == "" {
		ev.RawPath = "/"
		ev.RequestContext.HTTP.Path = "/"
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev, nil
}

// HTTPResponse reads a Function URL response (payload format 2.0) from an
// invocation's result.
func HTTPResponse(r Result) (*http.Response, error) {
	var resp events.LambdaFunctionURLResponse
	if err := r.Decode(&resp); err != nil {
		return nil, err
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return nil, fmt.Errorf("response body: %w", err)
		}
	}
	h := http.Header{}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)),
		StatusCode:    resp.StatusCode,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
	}, nil
}

// ScheduledEvent is the event an EventBridge schedule rule sends at t.
func ScheduledEvent(rule string, t time.Time) events.EventBridgeEvent {
	return events.EventBridgeEvent{
		Version:    "0",
		ID:         fmt.Sprintf("sched-%d", t.UnixNano()),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  "000000000000",
		Time:       t.UTC().Truncate(time.Second),
		Region:     "eu-central-1",
		Resources:  []string{"arn:aws:events:eu-central-1:000000000000:rule/" + rule},
		Detail:     json.RawMessage(`{}`),
	}
}
