package googleads

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Preview is the request UploadClickConversions would send, for a dry run
// (no credentials): method, URL, the headers that are not secret and the
// body, exactly as written on the wire. A conversion action given by name
// would first be resolved by a googleAds:search call; Preview lists that
// call in Searches and writes the action in the body as
// customers/{id}/conversionActions/{id of "NAME"}.
type Preview struct {
	Method   string            `json:"method"`
	URL      string            `json:"url"`
	Header   map[string]string `json:"header"`
	Body     json.RawMessage   `json:"body"`
	Searches []PreviewSearch   `json:"searches,omitempty"`
}

// PreviewSearch is one googleAds:search call a Preview depends on.
type PreviewSearch struct {
	URL  string          `json:"url"`
	Body json.RawMessage `json:"body"`
}

// PreviewUpload builds the Preview of uploading conversions (at most
// MaxConversionsPerRequest) to customerID through baseURL and version
// (empty: the defaults), with loginCustomerID as the manager when set.
func PreviewUpload(baseURL, version, loginCustomerID, customerID string, conversions []Conversion) (Preview, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if version == "" {
		version = DefaultVersion
	}
	if len(conversions) > MaxConversionsPerRequest {
		return Preview{}, fmt.Errorf("preview: %d conversions, at most %d a request", len(conversions), MaxConversionsPerRequest)
	}
	cid, err := NormalizeCustomerID(customerID)
	if err != nil {
		return Preview{}, fmt.Errorf("preview: %w", err)
	}
	base := strings.TrimRight(baseURL, "/") + "/" + version + "/customers/" + cid
	p := Preview{Method: "POST", URL: base + ":uploadClickConversions", Header: map[string]string{"Content-Type": "application/json"}}
	if loginCustomerID != "" {
		login, err := NormalizeCustomerID(loginCustomerID)
		if err != nil {
			return Preview{}, fmt.Errorf("preview: login customer id: %w", err)
		}
		p.Header["login-customer-id"] = login
	}
	searched := map[string]bool{}
	wires := make([]wireConversion, len(conversions))
	for i, cv := range conversions {
		action := strings.TrimSpace(cv.Action)
		resource := action
		switch {
		case numericRE.MatchString(action):
			resource = "customers/" + cid + "/conversionActions/" + action
		case resourceRE.MatchString(action):
		default:
			resource = fmt.Sprintf("customers/%s/conversionActions/{id of %q}", cid, action)
			if !searched[action] {
				searched[action] = true
				q, _ := json.Marshal(map[string]string{"query": actionQuery(action)})
				p.Searches = append(p.Searches, PreviewSearch{URL: base + "/googleAds:search", Body: q})
			}
		}
		wires[i] = wireConversion{
			Gclid: cv.GCLID, Gbraid: cv.GBRAID, Wbraid: cv.WBRAID,
			ConversionAction:   resource,
			ConversionDateTime: ConversionDateTime(cv.Time, cv.TimeZone),
			ConversionValue:    cv.Value,
			CurrencyCode:       cv.Currency,
			OrderID:            cv.OrderID,
			Consent:            cv.Consent,
		}
	}
	body, err := json.Marshal(uploadRequest{Conversions: wires, PartialFailure: true})
	if err != nil {
		return Preview{}, fmt.Errorf("preview: encode conversions: %w", err)
	}
	p.Body = body
	return p, nil
}
