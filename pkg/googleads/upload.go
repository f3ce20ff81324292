package googleads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Conversion is one offline click conversion.
type Conversion struct {
	// Exactly one click id: GCLID, or GBRAID / WBRAID for iOS traffic. This
	// package sends what it is given; Google (and the fake) refuse the rest.
	GCLID, GBRAID, WBRAID string
	// Action is the conversion action: its numeric id, its resource name
	// (customers/{id}/conversionActions/{id}) or its name. A name made only of
	// digits is taken as an id.
	Action string
	// Time is when the conversion happened; it must be after the click.
	Time time.Time
	// TimeZone is the site's; the wire date is written in it. Nil means UTC.
	TimeZone *time.Location
	// Value and Currency (ISO 4217). An empty currency leaves the action's
	// default.
	Value    float64
	Currency string
	// OrderID is the idempotency key: Google takes one conversion per order id
	// per action, so a repeat answers ORDER_ID_ALREADY_IN_USE (AlreadyUploaded).
	OrderID string
	// Consent is optional.
	Consent *Consent
}

// Consent is the conversion's consent, values as Google names them:
// GRANTED, DENIED, UNSPECIFIED, UNKNOWN. Empty fields are not sent.
type Consent struct {
	AdUserData        string `json:"adUserData,omitempty"`
	AdPersonalization string `json:"adPersonalization,omitempty"`
}

// wireDateTime is the layout Google wants for conversionDateTime:
// "yyyy-mm-dd hh:mm:ss+hh:mm", the offset always numeric ("+00:00" for UTC).
const wireDateTime = "2006-01-02 15:04:05-07:00"

// ConversionDateTime writes t as Google's conversionDateTime in loc (nil:
// UTC). The offset is loc's at that instant, so daylight saving is right on
// both sides of a change.
func ConversionDateTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(wireDateTime)
}

type wireConversion struct {
	Gclid              string   `json:"gclid,omitempty"`
	Gbraid             string   `json:"gbraid,omitempty"`
	Wbraid             string   `json:"wbraid,omitempty"`
	ConversionAction   string   `json:"conversionAction"`
	ConversionDateTime string   `json:"conversionDateTime"`
	ConversionValue    float64  `json:"conversionValue"`
	CurrencyCode       string   `json:"currencyCode,omitempty"`
	OrderID            string   `json:"orderId,omitempty"`
	Consent            *Consent `json:"consent,omitempty"`
}

type uploadRequest struct {
	Conversions    []wireConversion `json:"conversions"`
	PartialFailure bool             `json:"partialFailure"`
	ValidateOnly   bool             `json:"validateOnly"`
}

// UploadClickConversions uploads conversions to one customer (id with or
// without dashes) and returns one Outcome per conversion, in order. Names of
// conversion actions are resolved first (cached); more than
// MaxConversionsPerRequest conversions are sent in several calls, each with
// partialFailure, so one bad row never holds back the others.
//
// Every answer of Google's, whole-request errors included, becomes outcomes;
// the error is non-nil only when ctx ends, and then no outcome is returned
// (sending again is harmless: order ids make repeats AlreadyUploaded).
func (c *Client) UploadClickConversions(ctx context.Context, customerID string, conversions []Conversion) ([]Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Outcome, len(conversions))
	if len(conversions) == 0 {
		return out, nil
	}
	cid, err := NormalizeCustomerID(customerID)
	if err != nil {
		for i := range out {
			out[i] = Outcome{Status: ConfigError, Code: CodeInvalidCustomerID, Message: err.Error()}
		}
		return out, nil
	}
	actions := map[string]resolved{}
	var send []int
	wires := make([]wireConversion, len(conversions))
	for i, cv := range conversions {
		r, ok := actions[cv.Action]
		if !ok {
			if r, err = c.resolveAction(ctx, cid, cv.Action); err != nil {
				return nil, err
			}
			actions[cv.Action] = r
		}
		if r.fail != nil {
			out[i] = *r.fail
			continue
		}
		wires[i] = wireConversion{
			Gclid: cv.GCLID, Gbraid: cv.GBRAID, Wbraid: cv.WBRAID,
			ConversionAction:   r.resource,
			ConversionDateTime: ConversionDateTime(cv.Time, cv.TimeZone),
			ConversionValue:    cv.Value,
			CurrencyCode:       cv.Currency,
			OrderID:            cv.OrderID,
			Consent:            cv.Consent,
		}
		send = append(send, i)
	}
	for start := 0; start < len(send); start += MaxConversionsPerRequest {
		chunk := send[start:min(start+MaxConversionsPerRequest, len(send))]
		batch := make([]wireConversion, len(chunk))
		for j, i := range chunk {
			batch[j] = wires[i]
		}
		outs, err := c.upload(ctx, cid, batch)
		if err != nil {
			return nil, err
		}
		for j, i := range chunk {
			out[i] = outs[j]
			out[i].Action = wires[i].ConversionAction
		}
	}
	return out, nil
}

// upload is one uploadClickConversions call.
func (c *Client) upload(ctx context.Context, cid string, batch []wireConversion) ([]Outcome, error) {
	out := make([]Outcome, len(batch))
	body, err := json.Marshal(uploadRequest{Conversions: batch, PartialFailure: true})
	if err != nil {
		// Only a NaN or infinite value gets here.
		for i := range out {
			out[i] = Outcome{Status: Permanent, Code: "INVALID_VALUE", Message: "encode conversions: " + err.Error()}
		}
		return out, nil
	}
	ans, err := c.post(ctx, "/customers/"+cid+":uploadClickConversions", body)
	var oe *outcomeError
	switch {
	case errors.As(err, &oe):
		for i := range out {
			out[i] = oe.o
		}
		return out, nil
	case err != nil:
		return nil, err
	case ans.status == http.StatusOK:
		return rowOutcomes(ans.body, len(batch), c.now()), nil
	}
	now := c.now()
	whole, byRow := requestFailure(ans.status, ans.header, ans.body, now)
	for i := range out {
		switch {
		case len(byRow[i]) > 0:
			out[i] = outcomeOf(byRow[i], Permanent, now)
		case len(byRow) > 0:
			out[i] = Outcome{Status: RetryLater, Code: CodeNotSent, Message: fmt.Sprintf(
				"Google Ads refused the request because of other conversions in it: %s", whole.Message), RetryAt: now}
		default:
			out[i] = whole
		}
	}
	return out, nil
}

// OrderIDFor is the order id the single-conversion helper uses: derived from
// the click id alone, so that the same click is one conversion per action
// however often it is sent. It carries no personal data.
func OrderIDFor(clickID string) string {
	sum := sha256.Sum256([]byte(clickID))
	return "om-" + hex.EncodeToString(sum[:16])
}

// Customer binds a client to one Google Ads account with the site's currency
// and time zone, for the single-conversion helper.
type Customer struct {
	c        *Client
	id       string
	currency string
	tz       *time.Location
}

// Customer returns the single-conversion view of one account. tz nil is UTC.
func (c *Client) Customer(customerID, currency string, tz *time.Location) *Customer {
	return &Customer{c: c, id: customerID, currency: currency, tz: tz}
}

// UploadOfflineConversion is the roadmap's uploadOfflineConversion(gclid,
// conversionName, conversionValue, conversionTime): one click conversion to
// the action named conversionName (a name, a numeric id or a resource name),
// with the order id OrderIDFor(gclid).
func (cu *Customer) UploadOfflineConversion(ctx context.Context, gclid, conversionName string, conversionValue float64, conversionTime time.Time) (Outcome, error) {
	outs, err := cu.c.UploadClickConversions(ctx, cu.id, []Conversion{{
		GCLID:    gclid,
		Action:   conversionName,
		Time:     conversionTime,
		TimeZone: cu.tz,
		Value:    conversionValue,
		Currency: cu.currency,
		OrderID:  OrderIDFor(gclid),
	}})
	if err != nil {
		return Outcome{}, err
	}
	return outs[0], nil
}
