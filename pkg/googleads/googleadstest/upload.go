package googleadstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/currency"
)

// ClickConversion is a conversion as the REST API takes it.
type ClickConversion struct {
	Gclid              string   `json:"gclid,omitempty"`
	Gbraid             string   `json:"gbraid,omitempty"`
	Wbraid             string   `json:"wbraid,omitempty"`
	ConversionAction   string   `json:"conversionAction,omitempty"`
	ConversionDateTime string   `json:"conversionDateTime,omitempty"`
	ConversionValue    *float64 `json:"conversionValue,omitempty"`
	CurrencyCode       string   `json:"currencyCode,omitempty"`
	OrderID            string   `json:"orderId,omitempty"`
	Consent            *Consent `json:"consent,omitempty"`

	// Fields the API has that the fake accepts and ignores.
	ExternalAttributionData        json.RawMessage `json:"externalAttributionData,omitempty"`
	CustomVariables                json.RawMessage `json:"customVariables,omitempty"`
	CartData                       json.RawMessage `json:"cartData,omitempty"`
	UserIdentifiers                json.RawMessage `json:"userIdentifiers,omitempty"`
	ConversionEnvironment          string          `json:"conversionEnvironment,omitempty"`
	SessionAttributesEncoded       string          `json:"sessionAttributesEncoded,omitempty"`
	SessionAttributesKeyValuePairs json.RawMessage `json:"sessionAttributesKeyValuePairs,omitempty"`
	UserIPAddress                  string          `json:"userIpAddress,omitempty"`
}

// Consent is ClickConversion.consent.
type Consent struct {
	AdUserData        string `json:"adUserData,omitempty"`
	AdPersonalization string `json:"adPersonalization,omitempty"`
}

// UploadRequest is the body of uploadClickConversions.
type UploadRequest struct {
	Conversions    []ClickConversion `json:"conversions"`
	PartialFailure bool              `json:"partialFailure"`
	ValidateOnly   bool              `json:"validateOnly"`
	JobID          *int64            `json:"jobId,omitempty"`
	DebugEnabled   bool              `json:"debugEnabled,omitempty"`
}

// ParseUpload decodes a recorded upload request's body.
func ParseUpload(body []byte) (UploadRequest, error) {
	var req UploadRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	return req, err
}

var (
	wireDateRE  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$`)
	clickIDRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	actionRE    = regexp.MustCompile(`^customers/(\d+)/conversionActions/(\d+)$`)
	currencyRE  = regexp.MustCompile(`^[A-Z]{3}$`)
	consentVals = map[string]bool{"": true, "UNSPECIFIED": true, "UNKNOWN": true, "GRANTED": true, "DENIED": true}
)

// rowError is one failed row.
type rowError struct {
	kind, code, field, message, trigger string
}

func (s *Server) serveUpload(w http.ResponseWriter, customer string, body []byte) {
	req, err := ParseUpload(body)
	if err != nil {
		writeBadRequest(w, "", "Invalid JSON payload received. "+err.Error())
		return
	}
	for i, c := range req.Conversions {
		if c.Consent == nil {
			continue
		}
		for field, v := range map[string]string{"ad_user_data": c.Consent.AdUserData, "ad_personalization": c.Consent.AdPersonalization} {
			if !consentVals[v] {
				writeBadRequest(w, fmt.Sprintf("conversions[%d].consent.%s", i, field), fmt.Sprintf(
					"Invalid value at 'conversions[%d].consent.%s' (type.googleapis.com/google.ads.googleads.v26.enums.ConsentStatusEnum.ConsentStatus), %q", i, field, v))
				return
			}
		}
	}
	switch {
	case !req.PartialFailure:
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"partialFailureError": "PARTIAL_FAILURE_MODE_REQUIRED"}, Message: "The partial failure field was false in the request. This method requires this field be set to true."}})
		return
	case len(req.Conversions) == 0:
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"requestError": "REQUIRED_FIELD_MISSING"}, Message: messageFor("REQUIRED_FIELD_MISSING"),
				Location: &location{FieldPathElements: []fieldPathElement{{FieldName: "conversions"}}}}})
		return
	case len(req.Conversions) > 2000:
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"conversionUploadError": "TOO_MANY_CONVERSIONS_IN_REQUEST"}, Message: messageFor("TOO_MANY_CONVERSIONS_IN_REQUEST")}})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	jobID := s.nextJob
	s.nextJob++
	results := make([]map[string]string, len(req.Conversions))
	var errs []failureError
	inRequestOrders := map[string]bool{}
	inRequestClicks := map[string]bool{}
	var accepted []Upload
	for i, c := range req.Conversions {
		re, action, at := s.checkRow(customer, c, now)
		if re == nil {
			clickID := c.Gclid + c.Gbraid + c.Wbraid
			orderKey := action + "\x00" + c.OrderID
			clickKey := action + "\x00" + clickID + "\x00" + strconv.FormatInt(at.Unix(), 10)
			switch {
			case c.OrderID != "" && inRequestOrders[orderKey]:
				re = &rowError{kind: "conversionUploadError", code: "DUPLICATE_ORDER_ID", field: "order_id"}
			case inRequestClicks[clickKey]:
				re = &rowError{kind: "conversionUploadError", code: "DUPLICATE_CLICK_CONVERSION_IN_REQUEST", field: "conversion_date_time"}
			case c.OrderID != "" && s.orderIDs[orderKey]:
				re = &rowError{kind: "conversionUploadError", code: "ORDER_ID_ALREADY_IN_USE", field: "order_id", trigger: c.OrderID}
			case s.clickKeys[clickKey]:
				re = &rowError{kind: "conversionUploadError", code: "CLICK_CONVERSION_ALREADY_EXISTS", field: "conversion_date_time"}
			}
			if re == nil {
				if c.OrderID != "" {
					inRequestOrders[orderKey] = true
				}
				inRequestClicks[clickKey] = true
				accepted = append(accepted, Upload{CustomerID: customer, Conversion: c, JobID: jobID})
				res := map[string]string{"conversionAction": action, "conversionDateTime": c.ConversionDateTime}
				for k, v := range map[string]string{"gclid": c.Gclid, "gbraid": c.Gbraid, "wbraid": c.Wbraid} {
					if v != "" {
						res[k] = v
					}
				}
				results[i] = res
				continue
			}
		}
		if re.message == "" {
			re.message = messageFor(re.code)
		}
		fe := failureError{ErrorCode: map[string]string{re.kind: re.code}, Message: re.message, Location: rowLocation(i, re.field)}
		if re.trigger != "" {
			fe.Trigger = &trigger{StringValue: re.trigger}
		}
		errs = append(errs, fe)
		results[i] = map[string]string{}
	}
	if !req.ValidateOnly {
		for _, u := range accepted {
			c := u.Conversion
			at, _ := time.Parse("2006-01-02 15:04:05-07:00", c.ConversionDateTime)
			if c.OrderID != "" {
				s.orderIDs[c.ConversionAction+"\x00"+c.OrderID] = true
			}
			s.clickKeys[c.ConversionAction+"\x00"+c.Gclid+c.Gbraid+c.Wbraid+"\x00"+strconv.FormatInt(at.Unix(), 10)] = true
			s.uploads = append(s.uploads, u)
		}
	}
	resp := map[string]any{"results": results, "jobId": strconv.FormatInt(jobID, 10)}
	if len(errs) > 0 {
		parts := make([]string, len(errs))
		for i, e := range errs {
			parts[i] = e.Message + ", at " + e.Location.path()
		}
		resp["partialFailureError"] = rpcStatus{Code: 3, Message: strings.Join(parts, ", "), Details: []any{failureDetail(errs)}}
	}
	writeJSON(w, http.StatusOK, resp)
}

// checkRow validates one conversion as Google does and returns its error, or
// its action and time. Called with s.mu held.
func (s *Server) checkRow(customer string, c ClickConversion, now time.Time) (*rowError, string, time.Time) {
	clickID, clickField, ids := "", "", 0
	for _, f := range []struct{ name, v string }{{"gclid", c.Gclid}, {"gbraid", c.Gbraid}, {"wbraid", c.Wbraid}} {
		if f.v != "" {
			ids++
			if clickID == "" {
				clickID, clickField = f.v, f.name
			}
		}
	}
	if e, ok := s.rowErrors[clickID]; ok && clickID != "" {
		return &rowError{kind: e.Kind, code: e.Code, field: clickField, message: e.Message}, "", time.Time{}
	}
	switch {
	case ids == 0:
		return &rowError{kind: "requestError", code: "REQUIRED_FIELD_MISSING", field: "gclid"}, "", time.Time{}
	case c.Gbraid != "" && c.Wbraid != "":
		return &rowError{kind: "conversionUploadError", code: "GBRAID_WBRAID_BOTH_SET", field: "wbraid"}, "", time.Time{}
	case ids > 1:
		other := "gbraid"
		if c.Wbraid != "" {
			other = "wbraid"
		}
		return &rowError{kind: "fieldError", code: "VALUE_MUST_BE_UNSET", field: other}, "", time.Time{}
	case !clickIDRE.MatchString(clickID):
		return &rowError{kind: "conversionUploadError", code: "UNPARSEABLE_" + strings.ToUpper(clickField), field: clickField, trigger: clickID}, "", time.Time{}
	}

	if c.ConversionAction == "" {
		return &rowError{kind: "requestError", code: "REQUIRED_FIELD_MISSING", field: "conversion_action"}, "", time.Time{}
	}
	m := actionRE.FindStringSubmatch(c.ConversionAction)
	if m == nil {
		return &rowError{kind: "requestError", code: "RESOURCE_NAME_MALFORMED", field: "conversion_action", trigger: c.ConversionAction}, "", time.Time{}
	}
	action, ok := s.actions[c.ConversionAction]
	switch {
	case m[1] != customer || !ok || action.Status == "REMOVED":
		return &rowError{kind: "conversionUploadError", code: "NO_CONVERSION_ACTION_FOUND", field: "conversion_action"}, "", time.Time{}
	case action.Type != "UPLOAD_CLICKS":
		return &rowError{kind: "conversionUploadError", code: "INVALID_CONVERSION_ACTION_TYPE", field: "conversion_action"}, "", time.Time{}
	case !action.CreatedAt.IsZero() && now.Sub(action.CreatedAt) < 6*time.Hour:
		return &rowError{kind: "conversionUploadError", code: "TOO_RECENT_CONVERSION_ACTION", field: "conversion_action"}, "", time.Time{}
	}

	if c.ConversionDateTime == "" {
		return &rowError{kind: "requestError", code: "REQUIRED_FIELD_MISSING", field: "conversion_date_time"}, "", time.Time{}
	}
	if !wireDateRE.MatchString(c.ConversionDateTime) {
		return &rowError{kind: "dateError", code: "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET", field: "conversion_date_time", trigger: c.ConversionDateTime}, "", time.Time{}
	}
	at, err := time.Parse("2006-01-02 15:04:05-07:00", c.ConversionDateTime)
	if err != nil {
		return &rowError{kind: "dateError", code: "INVALID_FIELD_VALUES_IN_DATE_TIME", field: "conversion_date_time", trigger: c.ConversionDateTime}, "", time.Time{}
	}
	if c.CurrencyCode != "" {
		if _, err := currency.ParseISO(c.CurrencyCode); err != nil || !currencyRE.MatchString(c.CurrencyCode) {
			return &rowError{kind: "currencyCodeError", code: "UNSUPPORTED", field: "currency_code", trigger: c.CurrencyCode}, "", time.Time{}
		}
	}

	click, known := s.clicks[clickID]
	switch {
	case !known && s.opts.StrictClicks:
		return &rowError{kind: "conversionUploadError", code: "EVENT_NOT_FOUND", field: clickField}, "", time.Time{}
	case !known:
	case click.CustomerID != "" && click.CustomerID != customer:
		return &rowError{kind: "conversionUploadError", code: "INVALID_CUSTOMER_FOR_CLICK", field: clickField}, "", time.Time{}
	case at.Before(click.Time):
		return &rowError{kind: "conversionUploadError", code: "CONVERSION_PRECEDES_EVENT", field: "conversion_date_time"}, "", time.Time{}
	case at.Sub(click.Time) > time.Duration(action.LookbackDays)*24*time.Hour:
		return &rowError{kind: "conversionUploadError", code: "EXPIRED_EVENT", field: clickField}, "", time.Time{}
	case now.Sub(click.Time) < 6*time.Hour:
		return &rowError{kind: "conversionUploadError", code: "TOO_RECENT_EVENT", field: clickField}, "", time.Time{}
	}
	return nil, c.ConversionAction, at
}
