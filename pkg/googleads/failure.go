package googleads

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// rpcStatus is a google.rpc.Status as REST carries it: the body of an HTTP
// error ({"error": ...}) and the partialFailureError of a 200 answer.
type rpcStatus struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Details []json.RawMessage `json:"details"`
}

// parseStatus reads a google.rpc.Status and the errors of the
// GoogleAdsFailure details in it. Details of other types, and errors whose
// shape is unexpected, are skipped rather than failing the whole answer.
func parseStatus(raw []byte) (rpcStatus, []apiError, error) {
	var st rpcStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("decode google.rpc.Status: %w", err)
	}
	var errs []apiError
	for _, d := range st.Details {
		var failure struct {
			Errors []json.RawMessage `json:"errors"`
		}
		if json.Unmarshal(d, &failure) != nil {
			continue
		}
		for _, raw := range failure.Errors {
			if e, ok := parseError(raw); ok {
				errs = append(errs, e)
			}
		}
	}
	return st, errs, nil
}

type wireError struct {
	ErrorCode map[string]json.RawMessage `json:"errorCode"`
	Message   string                     `json:"message"`
	Location  struct {
		FieldPathElements []struct {
			FieldName string     `json:"fieldName"`
			Index     *wireIndex `json:"index"`
		} `json:"fieldPathElements"`
	} `json:"location"`
	Details struct {
		QuotaErrorDetails struct {
			RetryDelay string `json:"retryDelay"`
		} `json:"quotaErrorDetails"`
	} `json:"details"`
}

func parseError(raw []byte) (apiError, bool) {
	var w wireError
	if json.Unmarshal(raw, &w) != nil {
		return apiError{}, false
	}
	e := apiError{Message: w.Message, Row: -1}
	// errorCode is a oneof: one key naming the error type, a string value.
	keys := make([]string, 0, len(w.ErrorCode))
	for k := range w.ErrorCode {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v string
		if json.Unmarshal(w.ErrorCode[k], &v) == nil && v != "" {
			e.Kind, e.Code = k, v
			break
		}
	}
	if e.Code == "" {
		e.Code = "UNKNOWN"
	}
	for _, el := range w.Location.FieldPathElements {
		if el.FieldName == "conversions" && el.Index != nil && el.Index.ok {
			e.Row = el.Index.n
			break
		}
	}
	e.RetryDelay = parseDuration(w.Details.QuotaErrorDetails.RetryDelay)
	return e, true
}

// wireIndex is fieldPathElements[].index: an int32, so a JSON number; a
// string of digits is accepted too (proto3 JSON parsers accept both).
// Anything else leaves the error unlocated instead of failing the answer.
type wireIndex struct {
	n  int
	ok bool
}

func (w *wireIndex) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(bytes.TrimSpace(b), `"`))
	n, err := strconv.ParseInt(s, 10, 32)
	if err == nil && n >= 0 {
		w.n, w.ok = int(n), true
	}
	return nil
}

// parseDuration reads a google.protobuf.Duration in JSON ("30s", "1.5s").
func parseDuration(s string) time.Duration {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || !strings.HasSuffix(s, "s") || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) || v > 7*24*3600 {
		return 0
	}
	return time.Duration(v * float64(time.Second))
}

// rowOutcomes turns a 200 answer to uploadClickConversions for n sent
// conversions into n outcomes. results[] is index-aligned with the request
// and a failed row is {}; partialFailureError's errors name their row by the
// index of the "conversions" element of fieldPathElements.
func rowOutcomes(body []byte, n int, now time.Time) []Outcome {
	out := make([]Outcome, n)
	var resp struct {
		Results             []json.RawMessage `json:"results"`
		PartialFailureError json.RawMessage   `json:"partialFailureError"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		for i := range out {
			out[i] = Outcome{Status: RetryLater, Code: CodeBadResponse, Message: "unreadable answer from Google Ads: " + err.Error(), RetryAt: now.Add(defaultRetryDelay)}
		}
		return out
	}
	byRow := map[int][]apiError{}
	var general []apiError
	if pfe := bytes.TrimSpace(resp.PartialFailureError); len(pfe) > 0 && string(pfe) != "null" {
		st, errs, err := parseStatus(pfe)
		switch {
		case err != nil:
			general = []apiError{{Code: CodeBadResponse, Message: "unreadable partialFailureError: " + err.Error(), Row: -1}}
		default:
			for _, e := range errs {
				if e.Row >= 0 {
					byRow[e.Row] = append(byRow[e.Row], e)
				} else {
					general = append(general, e)
				}
			}
			if len(errs) == 0 {
				general = []apiError{{Code: statusCode(st), Message: st.Message, Row: -1}}
			}
		}
	}
	for i := range out {
		switch {
		case len(byRow[i]) > 0:
			out[i] = outcomeOf(byRow[i], Permanent, now)
		case i < len(resp.Results) && !emptyObject(resp.Results[i]):
			out[i] = Outcome{Status: Uploaded}
		case len(general) > 0:
			out[i] = outcomeOf(general, Permanent, now)
		default:
			out[i] = Outcome{Status: RetryLater, Code: CodeNoResult, Message: "Google Ads returned neither a result nor an error for this conversion", RetryAt: now.Add(defaultRetryDelay)}
		}
		if out[i].Code == CodeBadResponse {
			// An answer we cannot read says nothing about the data: retry
			// (order ids make a repeat harmless).
			out[i].Status, out[i].RetryAt = RetryLater, now.Add(defaultRetryDelay)
		}
	}
	return out
}

func emptyObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return true
	}
	return len(m) == 0
}

// statusCode names a google.rpc.Status: its status string, or the gRPC
// code's name.
func statusCode(st rpcStatus) string {
	if st.Status != "" {
		return st.Status
	}
	if name, ok := grpcCodes[st.Code]; ok {
		return name
	}
	return "UNKNOWN"
}

var grpcCodes = map[int]string{
	1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
	6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
	10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
	15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}

// requestFailure classifies an HTTP error answer (any status but 200). The
// whole outcome applies to every row, except that errors located at rows
// (a 400 that names conversions[i]) are returned by row.
func requestFailure(status int, header http.Header, body []byte, now time.Time) (Outcome, map[int][]apiError) {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	var st rpcStatus
	var errs []apiError
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		st, errs, _ = parseStatus(env.Error)
	}
	byRow := map[int][]apiError{}
	var general []apiError
	for _, e := range errs {
		if e.Row >= 0 && status == http.StatusBadRequest {
			byRow[e.Row] = append(byRow[e.Row], e)
		} else {
			general = append(general, e)
		}
	}
	message := st.Message
	if message == "" {
		message = fmt.Sprintf("HTTP %d from Google Ads", status)
	}
	code := statusCode(st)
	if st.Status == "" && st.Code == 0 {
		code = "HTTP_" + strconv.Itoa(status)
	}
	var o Outcome
	switch {
	case status == http.StatusTooManyRequests || st.Status == "RESOURCE_EXHAUSTED":
		o = Outcome{Status: RetryLater, Code: "RESOURCE_EXHAUSTED", Message: message}
		if len(general) > 0 {
			o = outcomeOf(general, RetryLater, now)
		}
	case status >= 500:
		o = Outcome{Status: RetryLater, Code: code, Message: message}
		if len(general) > 0 && classify(general[0].Kind, general[0].Code, RetryLater) == RetryLater {
			o.Code, o.Message = general[0].Code, general[0].Message
			o.RetryAt = now.Add(retryDelayFor(general[0]))
		}
	case status == http.StatusRequestTimeout || status == http.StatusConflict:
		o = Outcome{Status: RetryLater, Code: code, Message: message}
	case status == http.StatusBadRequest && len(general) > 0:
		o = outcomeOf(general, ConfigError, now)
	default:
		// 401 after the one refresh, 403 (authorization), 404 (a sunset
		// version or a wrong path), other 4xx: an operator has to act.
		o = Outcome{Status: ConfigError, Code: code, Message: message}
		if len(general) > 0 {
			o.Code, o.Message = general[0].Code, general[0].Message
		}
	}
	if o.Status == RetryLater {
		if d, ok := retryAfter(header, now); ok {
			o.RetryAt = now.Add(d)
		} else if o.RetryAt.IsZero() {
			o.RetryAt = now.Add(defaultRetryDelay)
		}
	}
	return o, byRow
}

// retryAfter reads a Retry-After header: delta-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > 7*24*3600 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
