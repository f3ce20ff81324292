package googleads

import (
	"strings"
	"time"
)

// Status is what became of one conversion, in the terms a caller acts on.
type Status string

const (
	// Uploaded: Google accepted the conversion.
	Uploaded Status = "uploaded"
	// AlreadyUploaded: Google already has it (same order id, or same click
	// and time); treat as success.
	AlreadyUploaded Status = "already_uploaded"
	// RetryLater: nothing is wrong with the conversion; send it again at
	// Outcome.RetryAt or later.
	RetryLater Status = "retry_later"
	// Permanent: the conversion's data can never be accepted (bad or expired
	// click, conversion before the click, duplicate in the request).
	Permanent Status = "permanent"
	// ConfigError: the account, the conversion action or the credentials need
	// an operator; the conversion itself may be fine once they are fixed.
	ConfigError Status = "config_error"
)

// Done reports whether Google has the conversion.
func (s Status) Done() bool { return s == Uploaded || s == AlreadyUploaded }

// Outcome is the result for one conversion.
type Outcome struct {
	Status Status
	// Code is Google's error code (the value of errorCode.conversionUploadError
	// or of another *Error key, or the google.rpc status such as UNAVAILABLE);
	// empty when Uploaded. A few codes are this package's own, for things Google
	// did not say: see the Code* constants.
	Code string
	// Message is Google's message, or ours for our own codes. Never a secret.
	Message string
	// RetryAt is when to try again (RetryLater only): Retry-After or Google's
	// retryDelay when given, 6 hours for TOO_RECENT_*, otherwise a short default.
	RetryAt time.Time
	// Action is the conversion action resource the conversion was sent to,
	// when it got that far.
	Action string
}

// This package's own codes, for conditions that carry no Google code.
const (
	// CodeTransport: the request did not get an answer (connection, timeout).
	CodeTransport = "TRANSPORT_ERROR"
	// CodeBadResponse: Google answered something this package cannot read.
	CodeBadResponse = "BAD_RESPONSE"
	// CodeNoResult: the answer had neither a result nor an error for the row.
	CodeNoResult = "NO_RESULT"
	// CodeNotSent: the whole request was refused because of other rows; this
	// row was not looked at and can be sent again.
	CodeNotSent = "NOT_SENT"
	// CodeInvalidCustomerID is also Google's requestError for the same thing.
	CodeInvalidCustomerID = "INVALID_CUSTOMER_ID"
	// CodeNoConversionAction is also Google's code when an upload names an
	// action that does not exist; used for names that resolve to nothing usable.
	CodeNoConversionAction = "NO_CONVERSION_ACTION_FOUND"
	// CodeInvalidActionType is Google's code for an action that does not take
	// click uploads.
	CodeInvalidActionType = "INVALID_CONVERSION_ACTION_TYPE"
)

const (
	// tooRecentDelay is Google's own advice for TOO_RECENT_EVENT and
	// TOO_RECENT_CONVERSION_ACTION ("retry after 6 hours").
	tooRecentDelay = 6 * time.Hour
	// defaultRetryDelay applies when Google named no time (5xx, quota without
	// retryDelay, network). The caller adds its own back-off on repeats.
	defaultRetryDelay = time.Minute
)

// classes is EXTERNAL-APIS.md's classification table, plus the codes of
// whole-request errors (quota, internal, authentication, authorization).
var classes = map[string]Status{
	// already done
	"CLICK_CONVERSION_ALREADY_EXISTS": AlreadyUploaded,
	"ORDER_ID_ALREADY_IN_USE":         AlreadyUploaded,
	// retry after about 6 hours
	"TOO_RECENT_EVENT":             RetryLater,
	"TOO_RECENT_CONVERSION_ACTION": RetryLater,
	// permanent, data
	"UNPARSEABLE_GCLID":                     Permanent,
	"UNPARSEABLE_GBRAID":                    Permanent,
	"UNPARSEABLE_WBRAID":                    Permanent,
	"GBRAID_WBRAID_BOTH_SET":                Permanent,
	"CONVERSION_PRECEDES_EVENT":             Permanent,
	"EXPIRED_EVENT":                         Permanent,
	"EVENT_NOT_FOUND":                       Permanent,
	"CLICK_NOT_FOUND":                       Permanent,
	"DUPLICATE_CLICK_CONVERSION_IN_REQUEST": Permanent,
	"DUPLICATE_ORDER_ID":                    Permanent,
	// permanent, configuration
	"UNAUTHORIZED_CUSTOMER":                              ConfigError,
	"INVALID_CUSTOMER_FOR_CLICK":                         ConfigError,
	"NO_CONVERSION_ACTION_FOUND":                         ConfigError,
	"INVALID_CONVERSION_ACTION_TYPE":                     ConfigError,
	"CONVERSION_TRACKING_NOT_ENABLED_AT_IMPRESSION_TIME": ConfigError,
	"CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS":          ConfigError,
	// whole-request: quota and Google's own trouble
	"RESOURCE_EXHAUSTED":             RetryLater,
	"RESOURCE_TEMPORARILY_EXHAUSTED": RetryLater,
	"INTERNAL_ERROR":                 RetryLater,
	"TRANSIENT_ERROR":                RetryLater,
	"DEADLINE_EXCEEDED":              RetryLater,
	// whole-request: who we are and what we may touch
	"INVALID_CUSTOMER_ID":                 ConfigError,
	"INVALID_LOGIN_CUSTOMER_ID":           ConfigError,
	"LOGIN_CUSTOMER_ID_PARAMETER_MISSING": ConfigError,
	"ACCESS_PROHIBITED":                   ConfigError,
}

// classify returns the class of a Google error code; unknown codes fall back
// to dflt (Permanent for a row, ConfigError for a whole request: a request we
// built that Google refuses as a whole needs a person, not a retry loop).
func classify(kind, code string, dflt Status) Status {
	if s, ok := classes[code]; ok {
		return s
	}
	switch kind {
	case "authenticationError", "authorizationError", "headerError":
		return ConfigError
	case "internalError":
		return RetryLater
	}
	return dflt
}

// apiError is one error of a GoogleAdsFailure, reduced to what we act on.
type apiError struct {
	Kind    string // errorCode key, e.g. conversionUploadError
	Code    string // its value, e.g. CONVERSION_PRECEDES_EVENT
	Message string
	// Row is the conversions[] index the error names, or -1.
	Row int
	// RetryDelay is quotaErrorDetails.retryDelay, when given.
	RetryDelay time.Duration
}

// rank orders classes when one row has several errors: if Google already has
// the conversion nothing else matters; otherwise the one that needs a person
// wins over the data, and the data over a retry.
var rank = map[Status]int{AlreadyUploaded: 4, ConfigError: 3, Permanent: 2, RetryLater: 1}

// outcomeOf picks the deciding error of a row and makes its outcome.
func outcomeOf(errs []apiError, dflt Status, now time.Time) Outcome {
	var best Outcome
	bestRank := -1
	for _, e := range errs {
		s := classify(e.Kind, e.Code, dflt)
		if rank[s] <= bestRank {
			continue
		}
		bestRank = rank[s]
		best = Outcome{Status: s, Code: e.Code, Message: e.Message}
		if s == RetryLater {
			best.RetryAt = now.Add(retryDelayFor(e))
		}
	}
	return best
}

func retryDelayFor(e apiError) time.Duration {
	switch {
	case strings.HasPrefix(e.Code, "TOO_RECENT_"):
		return tooRecentDelay
	case e.RetryDelay > 0:
		return e.RetryDelay
	}
	return defaultRetryDelay
}
