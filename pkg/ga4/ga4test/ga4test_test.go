package ga4test_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/ga4/ga4test"
)

var now0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func post(t *testing.T, srv *ga4test.Server, path, query, body string) (int, []map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path+"?"+query, strings.NewReader(body)))
	var resp struct{ ValidationMessages []map[string]string }
	json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec.Code, resp.ValidationMessages
}

const creds = "measurement_id=" + ga4test.MeasurementID + "&api_secret=" + ga4test.APISecret

func events(n int, name string) string {
	ev := make([]string, n)
	for i := range ev {
		ev[i] = fmt.Sprintf(`{"name":%q,"params":{"value":1}}`, name)
	}
	return strings.Join(ev, ",")
}

func TestDebugValidationMessages(t *testing.T) {
	srv := ga4test.New(ga4test.Options{Now: func() time.Time { return now0 }})
	old := now0.Add(-73 * time.Hour).UnixMicro()
	for _, tc := range []struct {
		name, query, body string
		want              string // "fieldPath:code" joined by ","
	}{
		{"valid", creds, `{"client_id":"c","events":[` + events(1, "qualify_lead") + `]}`, ""},
		{"25 events", creds, `{"client_id":"c","events":[` + events(25, "qualify_lead") + `]}`, ""},
		{"26 events", creds, `{"client_id":"c","events":[` + events(26, "qualify_lead") + `]}`, "events:EXCEEDED_MAX_ENTITIES"},
		{"no events", creds, `{"client_id":"c","events":[]}`, "events:VALUE_REQUIRED"},
		{"no client_id", creds, `{"events":[` + events(1, "qualify_lead") + `]}`, "client_id:VALUE_REQUIRED"},
		{"bad name", creds, `{"client_id":"c","events":[` + events(1, "1lead") + `]}`, "events:NAME_INVALID"},
		{"41-char name", creds, `{"client_id":"c","events":[` + events(1, strings.Repeat("a", 41)) + `]}`, "events:NAME_INVALID"},
		{"40-char name", creds, `{"client_id":"c","events":[` + events(1, strings.Repeat("a", 40)) + `]}`, ""},
		{"reserved name", creds, `{"client_id":"c","events":[` + events(1, "session_start") + `]}`, "events:NAME_RESERVED"},
		{"reserved prefix", creds, `{"client_id":"c","events":[` + events(1, "google_lead") + `]}`, "events:NAME_RESERVED"},
		{"reserved param", creds, `{"client_id":"c","events":[{"name":"x","params":{"ga_x":1}}]}`, "events.params:NAME_RESERVED"},
		{"100-char value", creds, `{"client_id":"c","events":[{"name":"x","params":{"p":"` + strings.Repeat("é", 100) + `"}}]}`, ""},
		{"101-char value", creds, `{"client_id":"c","events":[{"name":"x","params":{"p":"` + strings.Repeat("é", 101) + `"}}]}`, "events.params:VALUE_OUT_OF_BOUNDS"},
		{"73 hours old", creds, fmt.Sprintf(`{"client_id":"c","timestamp_micros":%d,"events":[{"name":"x","timestamp_micros":%d}]}`, old, old), "timestamp_micros:VALUE_OUT_OF_BOUNDS,events.timestamp_micros:VALUE_OUT_OF_BOUNDS"},
		{"wrong stream", "measurement_id=G-OTHER&api_secret=" + ga4test.APISecret, `{"client_id":"c","events":[` + events(1, "x") + `]}`, "measurement_id:VALUE_INVALID"},
		{"wrong secret", "measurement_id=" + ga4test.MeasurementID + "&api_secret=x", `{"client_id":"c","events":[` + events(1, "x") + `]}`, "api_secret:VALUE_INVALID"},
		{"not JSON", creds, `client_id=c`, ":VALUE_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msgs := post(t, srv, "/debug/mp/collect", tc.query, tc.body)
			var got []string
			for _, m := range msgs {
				got = append(got, m["fieldPath"]+":"+m["validationCode"])
				if m["description"] == "" {
					t.Errorf("message without description: %v", m)
				}
			}
			if status != 200 || strings.Join(got, ",") != tc.want {
				t.Errorf("%d %v, want %s", status, got, tc.want)
			}
		})
	}
	params := make([]string, 26)
	for i := range params {
		params[i] = fmt.Sprintf(`"p%d":1`, i)
	}
	if _, msgs := post(t, srv, "/debug/mp/collect", creds, `{"client_id":"c","events":[{"name":"x","params":{`+strings.Join(params, ",")+`}}]}`); len(msgs) != 1 || msgs[0]["validationCode"] != "EXCEEDED_MAX_ENTITIES" {
		t.Errorf("26 params: %v", msgs)
	}
}

func TestCollectAnswers204AndKeepsOnlyValidEvents(t *testing.T) {
	srv := ga4test.New(ga4test.Options{})
	for _, body := range []string{`{"client_id":"c","events":[` + events(2, "qualify_lead") + `]}`, `{"events":[` + events(1, "x") + `]}`, `nonsense`} {
		if status, _ := post(t, srv, "/mp/collect", creds, body); status != http.StatusNoContent {
			t.Errorf("%s: %d", body, status)
		}
	}
	if ev := srv.Events(); len(ev) != 2 || ev[0].ClientID != "c" || ev[0].Name != "qualify_lead" {
		t.Errorf("events %+v", ev)
	}
	if r := srv.Requests(); len(r) != 3 || len(r[1].Messages) != 1 || r[0].Debug {
		t.Errorf("requests %+v", r)
	}
	srv.FailNext(503, "9")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mp/collect?"+creds, strings.NewReader(`{}`)))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "9" {
		t.Errorf("%d %v", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/mp/collect", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET: %d", rec.Code)
	}
}
