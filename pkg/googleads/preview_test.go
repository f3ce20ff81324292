package googleads_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/googleads"
	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
)

// TestPreviewIsTheRequestTheClientSends: for an action given by id or
// resource name, the preview's URL and body are byte for byte what the
// client sends; for a name, it lists the search and marks the action.
func TestPreviewIsTheRequestTheClientSends(t *testing.T) {
	ist, _ := time.LoadLocation("Europe/Istanbul")
	for _, action := range []string{"987", actionRes} {
		e := setup(t)
		c := conv("Cj0KCQ-preview", "order-1")
		c.Action, c.TimeZone, c.Consent = action, ist, &googleads.Consent{AdUserData: "GRANTED"}
		upload(t, e, c)
		sent := e.srv.RequestsTo(googleadstest.EndpointUpload)
		p, err := googleads.PreviewUpload(e.cfg.BaseURL, "", "", customerDash, []googleads.Conversion{c})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) != 1 || p.Method != "POST" || p.URL != e.cfg.BaseURL+sent[0].Path || !bytes.Equal(p.Body, sent[0].Body) || len(p.Searches) != 0 {
			t.Fatalf("action %s: preview %s %s %s, sent %+v", action, p.Method, p.URL, p.Body, sent)
		}
		if !strings.Contains(string(p.Body), `"conversionDateTime":"2026-11-20 14:00:00+03:00"`) {
			t.Errorf("the wire time is not in the site's zone: %s", p.Body)
		}
	}

	p, err := googleads.PreviewUpload("", "v25", "111-222-3333", customer, []googleads.Conversion{conv("a", "1"), conv("b", "2")})
	if err != nil {
		t.Fatal(err)
	}
	if p.URL != "https://googleads.googleapis.com/v25/customers/1234567890:uploadClickConversions" || p.Header["login-customer-id"] != "1112223333" ||
		len(p.Searches) != 1 || !strings.Contains(string(p.Searches[0].Body), `conversion_action.name = 'Qualified lead'`) ||
		strings.Count(string(p.Body), `customers/1234567890/conversionActions/{id of \"Qualified lead\"}`) != 2 {
		t.Fatalf("by name: %+v %s", p, p.Body)
	}

	if _, err := googleads.PreviewUpload("", "", "", "12345", nil); err == nil {
		t.Error("a bad customer id was accepted")
	}
	if _, err := googleads.PreviewUpload("", "", "", customer, make([]googleads.Conversion, googleads.MaxConversionsPerRequest+1)); err == nil {
		t.Error("more than one request's worth was accepted")
	}
}
