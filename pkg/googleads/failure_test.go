package googleads

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

var now0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// realPartialFailure is the shape of a real answer: rows 1 and 3 failed,
// row 3 twice; results are index-aligned and failed rows are {}.
const realPartialFailure = `{
  "partialFailureError": {
    "code": 3,
    "message": "The imported event has a conversion_date_time that precedes the click., at conversions[1].conversion_date_time",
    "details": [
      {
        "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
        "errors": [
          {
            "errorCode": {"conversionUploadError": "CONVERSION_PRECEDES_EVENT"},
            "message": "The imported event has a conversion_date_time that precedes the click.",
            "trigger": {"stringValue": "2026-11-20 10:00:00+00:00"},
            "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 1}, {"fieldName": "conversion_date_time"}]}
          },
          {
            "errorCode": {"conversionUploadError": "TOO_RECENT_EVENT"},
            "message": "The click occurred less than 6 hours ago.",
            "location": {"fieldPathElements": [{"fieldName": "conversions", "index": "3"}, {"fieldName": "gclid"}]}
          },
          {
            "errorCode": {"conversionUploadError": "ORDER_ID_ALREADY_IN_USE"},
            "message": "The order id was used before.",
            "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 3}, {"fieldName": "order_id"}]}
          }
        ],
        "requestId": "abc"
      }
    ]
  },
  "results": [
    {"gclid": "a", "conversionAction": "customers/1/conversionActions/2", "conversionDateTime": "2026-11-20 10:00:00+00:00"},
    {},
    {"gclid": "c", "conversionAction": "customers/1/conversionActions/2", "conversionDateTime": "2026-11-20 10:00:00+00:00"},
    {}
  ],
  "jobId": "7"
}`

func TestRowOutcomesMatchByIndex(t *testing.T) {
	outs := rowOutcomes([]byte(realPartialFailure), 4, now0)
	want := []Outcome{
		{Status: Uploaded},
		{Status: Permanent, Code: "CONVERSION_PRECEDES_EVENT", Message: "The imported event has a conversion_date_time that precedes the click."},
		{Status: Uploaded},
		// Two errors on one row: Google has it already, which decides.
		{Status: AlreadyUploaded, Code: "ORDER_ID_ALREADY_IN_USE", Message: "The order id was used before."},
	}
	if !reflect.DeepEqual(outs, want) {
		t.Fatalf("got  %+v\nwant %+v", outs, want)
	}
}

func TestRowOutcomesEdgeShapes(t *testing.T) {
	cases := []struct {
		name string
		body string
		n    int
		want []Status
		code []string
	}{
		{"all uploaded", `{"results":[{"gclid":"a"},{"gclid":"b"}]}`, 2, []Status{Uploaded, Uploaded}, []string{"", ""}},
		{"results shorter than the request", `{"results":[{"gclid":"a"}]}`, 2, []Status{Uploaded, RetryLater}, []string{"", CodeNoResult}},
		{"unlocated error applies to rows without result",
			`{"results":[{"gclid":"a"},{}],"partialFailureError":{"code":3,"message":"m","details":[{"@type":"x.GoogleAdsFailure","errors":[{"errorCode":{"conversionUploadError":"EXPIRED_EVENT"},"message":"old"}]}]}}`,
			2, []Status{Uploaded, Permanent}, []string{"", "EXPIRED_EVENT"}},
		{"status without GoogleAdsFailure",
			`{"results":[{}],"partialFailureError":{"code":3,"message":"Request contains an invalid argument."}}`,
			1, []Status{Permanent}, []string{"INVALID_ARGUMENT"}},
		{"out-of-range and negative indexes are ignored",
			`{"results":[{"gclid":"a"}],"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"EXPIRED_EVENT"},"location":{"fieldPathElements":[{"fieldName":"conversions","index":5}]}},{"errorCode":{"conversionUploadError":"EXPIRED_EVENT"},"location":{"fieldPathElements":[{"fieldName":"conversions","index":-1}]}}]}]}}`,
			1, []Status{Uploaded}, []string{""}},
		{"an error on a row overrides its result",
			`{"results":[{"gclid":"a"}],"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"UNAUTHORIZED_CUSTOMER"},"message":"m","location":{"fieldPathElements":[{"fieldName":"conversions","index":0}]}}]}]}}`,
			1, []Status{ConfigError}, []string{"UNAUTHORIZED_CUSTOMER"}},
		{"another detail type is skipped",
			`{"results":[{},{"gclid":"b"}],"partialFailureError":{"code":3,"details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"x"}]},{"errors":[{"errorCode":{"dateError":"INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"},"message":"m","location":{"fieldPathElements":[{"fieldName":"conversions","index":0},{"fieldName":"conversion_date_time"}]}}]}]}}`,
			2, []Status{Permanent, Uploaded}, []string{"INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET", ""}},
		{"unreadable body", `<html>`, 2, []Status{RetryLater, RetryLater}, []string{CodeBadResponse, CodeBadResponse}},
		{"unreadable partialFailureError", `{"results":[{}],"partialFailureError":"oops"}`, 1, []Status{RetryLater}, []string{CodeBadResponse}},
		{"null partialFailureError", `{"results":[{"gclid":"a"}],"partialFailureError":null}`, 1, []Status{Uploaded}, []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outs := rowOutcomes([]byte(tc.body), tc.n, now0)
			for i, o := range outs {
				if o.Status != tc.want[i] || o.Code != tc.code[i] {
					t.Errorf("row %d: %s %s, want %s %s", i, o.Status, o.Code, tc.want[i], tc.code[i])
				}
			}
		})
	}
}

func TestRequestFailureLocatedRows(t *testing.T) {
	body := `{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure","errors":[{"errorCode":{"fieldError":"REQUIRED"},"message":"The required field was not present.","location":{"fieldPathElements":[{"fieldName":"conversions","index":2},{"fieldName":"conversion_action"}]}}]}]}}`
	whole, byRow := requestFailure(http.StatusBadRequest, http.Header{}, []byte(body), now0)
	if len(byRow) != 1 || byRow[2][0].Code != "REQUIRED" {
		t.Fatalf("byRow %+v", byRow)
	}
	if whole.Status != ConfigError {
		t.Errorf("whole %+v", whole)
	}
}

func TestRetryAfterAndDurations(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"0": 0, "120": 2 * time.Minute, now0.Add(time.Hour).Format(http.TimeFormat): time.Hour,
		now0.Add(-time.Hour).Format(http.TimeFormat): 0,
	} {
		d, ok := retryAfter(http.Header{"Retry-After": {v}}, now0)
		if !ok || d != want {
			t.Errorf("Retry-After %q: %v %v, want %v", v, d, ok, want)
		}
	}
	for _, v := range []string{"", "-5", "soon", "999999999"} {
		if _, ok := retryAfter(http.Header{"Retry-After": {v}}, now0); ok {
			t.Errorf("Retry-After %q accepted", v)
		}
	}
	for v, want := range map[string]time.Duration{"30s": 30 * time.Second, "1.5s": 1500 * time.Millisecond, "": 0, "30": 0, "-1s": 0, "NaNs": 0, "infs": 0, "1e9s": 0} {
		if got := parseDuration(v); got != want {
			t.Errorf("parseDuration(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestGAQLString(t *testing.T) {
	for in, want := range map[string]string{
		"Qualified lead": `'Qualified lead'`,
		"Lead's":         `'Lead\'s'`,
		`a\b`:            `'a\\b'`,
		`\'`:             `'\\\''`,
		`"x"`:            `'"x"'`,
		"":               `''`,
	} {
		if got := gaqlString(in); got != want {
			t.Errorf("gaqlString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzRowOutcomes feeds arbitrary answers to the partialFailureError parser:
// it must never panic, must give exactly one outcome per sent row, each a
// known status, Uploaded only without a code, and every retry in the future.
func FuzzRowOutcomes(f *testing.F) {
	f.Add([]byte(realPartialFailure), 4)
	f.Add([]byte(`{"results":[{},{}],"partialFailureError":{"code":3,"details":[{"errors":[{"errorCode":{"conversionUploadError":"TOO_RECENT_EVENT"},"location":{"fieldPathElements":[{"fieldName":"conversions","index":1}]}}]}]}}`), 2)
	f.Add([]byte(`{"results":[{"gclid":"a"}]}`), 1)
	f.Add([]byte(`{"results":[],"partialFailureError":{"details":[{"errors":[{"errorCode":{"quotaError":"RESOURCE_EXHAUSTED"},"details":{"quotaErrorDetails":{"retryDelay":"30s"}}}]}]}}`), 3)
	f.Add([]byte(`{"partialFailureError":{"details":[{"errors":[{"errorCode":{"a":1,"b":"X"},"location":{"fieldPathElements":[{"fieldName":"conversions","index":"2147483648"}]}}]}]}}`), 2)
	f.Add([]byte(`{"partialFailureError":{"details":[{"errors":"nope"}, 5, null]}}`), 1)
	f.Add([]byte(`null`), 0)
	f.Add([]byte(``), 1)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 3000 {
			n = (n%3001 + 3001) % 3001
		}
		outs := rowOutcomes(body, n, now0)
		if len(outs) != n {
			t.Fatalf("%d outcomes for %d rows", len(outs), n)
		}
		for i, o := range outs {
			switch o.Status {
			case Uploaded:
				if o.Code != "" {
					t.Fatalf("row %d uploaded with code %q", i, o.Code)
				}
			case AlreadyUploaded, Permanent, ConfigError:
				if o.Code == "" {
					t.Fatalf("row %d: %s without a code", i, o.Status)
				}
			case RetryLater:
				if o.Code == "" || !o.RetryAt.After(now0) {
					t.Fatalf("row %d: retry %q at %v", i, o.Code, o.RetryAt)
				}
			default:
				t.Fatalf("row %d: status %q", i, o.Status)
			}
		}
		again := rowOutcomes(body, n, now0)
		if !reflect.DeepEqual(outs, again) {
			t.Fatal("not deterministic")
		}
		// The status parser alone, on the same bytes: rows are -1 or an index.
		if _, errs, err := parseStatus(body); err == nil {
			for _, e := range errs {
				if e.Row < -1 || e.Code == "" {
					t.Fatalf("error %+v", e)
				}
			}
		}
	})
}
