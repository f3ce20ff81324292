package googleadstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// failureError is one error of a GoogleAdsFailure, as REST writes it.
type failureError struct {
	ErrorCode map[string]string `json:"errorCode"`
	Message   string            `json:"message"`
	Trigger   *trigger          `json:"trigger,omitempty"`
	Location  *location         `json:"location,omitempty"`
	Details   *errorDetails     `json:"details,omitempty"`
}

type trigger struct {
	StringValue string `json:"stringValue"`
}

type location struct {
	FieldPathElements []fieldPathElement `json:"fieldPathElements"`
}

type fieldPathElement struct {
	FieldName string `json:"fieldName"`
	Index     *int   `json:"index,omitempty"`
}

type errorDetails struct {
	QuotaErrorDetails *quotaErrorDetails `json:"quotaErrorDetails,omitempty"`
}

type quotaErrorDetails struct {
	RateScope  string `json:"rateScope"`
	RateName   string `json:"rateName"`
	RetryDelay string `json:"retryDelay,omitempty"`
}

// rowLocation is conversions[i].field.
func rowLocation(i int, field string) *location {
	idx := i
	l := &location{FieldPathElements: []fieldPathElement{{FieldName: "conversions", Index: &idx}}}
	if field != "" {
		l.FieldPathElements = append(l.FieldPathElements, fieldPathElement{FieldName: field})
	}
	return l
}

// path renders a location as Google does in messages: conversions[0].gclid.
func (l *location) path() string {
	var b strings.Builder
	for i, e := range l.FieldPathElements {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.FieldName)
		if e.Index != nil {
			fmt.Fprintf(&b, "[%d]", *e.Index)
		}
	}
	return b.String()
}

// googleAdsFailure is the detail that carries the errors.
type googleAdsFailure struct {
	Type      string         `json:"@type"`
	Errors    []failureError `json:"errors"`
	RequestID string         `json:"requestId"`
}

// rpcStatus is google.rpc.Status. In an HTTP error body code is the HTTP
// status; in partialFailureError it is the gRPC code (3, INVALID_ARGUMENT).
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status,omitempty"`
	Details []any  `json:"details,omitempty"`
}

var requestIDs atomic.Int64

func failureDetail(errs []failureError) googleAdsFailure {
	return googleAdsFailure{
		Type:      "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
		Errors:    errs,
		RequestID: fmt.Sprintf("fake-%010d", requestIDs.Add(1)),
	}
}

// writeStatus writes an HTTP error with a google.rpc.Status body.
func writeStatus(w http.ResponseWriter, httpStatus int, status, message string, errs []failureError) {
	st := rpcStatus{Code: httpStatus, Message: message, Status: status}
	if len(errs) > 0 {
		st.Details = []any{failureDetail(errs)}
	}
	writeJSON(w, httpStatus, map[string]any{"error": st})
}

// writeBadRequest is a 400 for a payload that does not parse, with the
// google.rpc.BadRequest detail Google's front end adds.
func writeBadRequest(w http.ResponseWriter, field, description string) {
	st := rpcStatus{Code: http.StatusBadRequest, Message: description, Status: "INVALID_ARGUMENT", Details: []any{map[string]any{
		"@type":           "type.googleapis.com/google.rpc.BadRequest",
		"fieldViolations": []map[string]string{{"field": field, "description": description}},
	}}}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": st})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// messages are Google's messages for the codes the fake gives.
var messages = map[string]string{
	"TOO_MANY_CONVERSIONS_IN_REQUEST":                    "Upload fewer than 2001 events in a single request.",
	"UNPARSEABLE_GCLID":                                  "The imported gclid could not be decoded.",
	"UNPARSEABLE_GBRAID":                                 "Can't parse event import data. Check if your gbraid parameter was not modified and try again.",
	"UNPARSEABLE_WBRAID":                                 "Can't parse event import data. Check if your wbraid parameter was not modified and try again.",
	"GBRAID_WBRAID_BOTH_SET":                             "Can't use both gbraid and wbraid parameters. Use only 1 and try again.",
	"CONVERSION_PRECEDES_EVENT":                          "The imported event has a conversion_date_time that precedes the click. Make sure your conversion_date_time is correct and try again.",
	"EXPIRED_EVENT":                                      "The imported event can't be recorded because its click occurred before this conversion's click-through window. Make sure you import the most recent data.",
	"TOO_RECENT_EVENT":                                   "The click associated with the given identifier or iOS URL parameter occurred less than 6 hours ago. Retry after 6 hours have passed.",
	"EVENT_NOT_FOUND":                                    "The imported event could not be attributed to a click. This may be because the event did not come from a Google Ads campaign.",
	"CLICK_NOT_FOUND":                                    "The email address or phone number for this event can't be matched to a click.",
	"UNAUTHORIZED_CUSTOMER":                              "The click ID or call is associated with an Ads account you don't have access to. Make sure you import conversions for accounts managed by your manager account.",
	"TOO_RECENT_CONVERSION_ACTION":                       "Can't import events to a conversion action that was just created. Try importing again in 6 hours.",
	"CONVERSION_TRACKING_NOT_ENABLED_AT_IMPRESSION_TIME": "At the time of the click, conversion tracking was not enabled in the effective conversion account of the click's Google Ads account.",
	"ORDER_ID_ALREADY_IN_USE":                            "The imported event includes an order ID that was previously recorded, so the event was not processed.",
	"DUPLICATE_ORDER_ID":                                 "Imported events include multiple conversions with the same order ID and were not processed. Make sure order IDs are unique and try again.",
	"CLICK_CONVERSION_ALREADY_EXISTS":                    "The imported event has the same click and conversion_date_time as an existing conversion. Use a unique conversion_date_time or order ID for each unique event and try again.",
	"DUPLICATE_CLICK_CONVERSION_IN_REQUEST":              "Multiple events have the same click and conversion_date_time. Make sure your conversion_date_time is correctly configured and try again.",
	"INVALID_CUSTOMER_FOR_CLICK":                         "The click from the imported event is associated with a different Google Ads account. Make sure you're importing to the correct account.",
	"CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS":          "Make sure you agree to the customer data processing terms in conversion settings and try again.",
	"NO_CONVERSION_ACTION_FOUND":                         "The conversion action specified in the upload request cannot be found. Make sure it's available in this account.",
	"INVALID_CONVERSION_ACTION_TYPE":                     "The conversion action specified in the upload request isn't set up for uploading conversions.",
	"REQUIRED_FIELD_MISSING":                             "The required field was not present.",
	"RESOURCE_NAME_MALFORMED":                            "Resource name is malformed.",
	"VALUE_MUST_BE_UNSET":                                "The field's value must be unset.",
	"INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET":       "The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm.",
	"INVALID_FIELD_VALUES_IN_DATE_TIME":                  "Given field values do not correspond to a valid date time.",
	"UNSUPPORTED":                                        "The currency code is not supported.",
	"RESOURCE_EXHAUSTED":                                 "Too many requests. Retry in 30 seconds.",
	"RESOURCE_TEMPORARILY_EXHAUSTED":                     "Too many requests. Retry in 30 seconds.",
}

func messageFor(code string) string {
	if m, ok := messages[code]; ok {
		return m
	}
	return "Error " + code + "."
}
