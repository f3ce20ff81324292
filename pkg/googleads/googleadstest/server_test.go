package googleadstest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
)

const cust = "1234567890"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type fixture struct {
	srv   *googleadstest.Server
	clock *clock
	token string
}

func newFixture(t *testing.T, opts googleadstest.Options) *fixture {
	clk := &clock{t: t0}
	opts.Now = clk.Now
	srv := googleadstest.NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 987, Name: "Qualified lead"})
	f := &fixture{srv: srv, clock: clk}
	status, body := f.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {googleadstest.ClientID},
		"client_secret": {googleadstest.ClientSecret}, "refresh_token": {googleadstest.RefreshToken}})
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	f.token = body["access_token"].(string)
	return f
}

func (f *fixture) tokenRequest(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(f.srv.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// call posts a JSON body to an API path and decodes the answer.
func (f *fixture) call(t *testing.T, path, body string, header ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.token)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}

const uploadPath = "/v26/customers/" + cust + ":uploadClickConversions"
const searchPath = "/v26/customers/" + cust + "/googleAds:search"

func uploadBody(convs ...string) string {
	return `{"conversions":[` + strings.Join(convs, ",") + `],"partialFailure":true,"validateOnly":false}`
}

func row(gclid, orderID, when string) string {
	return fmt.Sprintf(`{"gclid":%q,"conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":%q,"conversionValue":1,"currencyCode":"EUR","orderId":%q}`, gclid, when, orderID)
}

// errorCodes lists "kind:CODE@location" for each error of a google.rpc.Status.
func errorCodes(st any) []string {
	var out []string
	m, _ := st.(map[string]any)
	details, _ := m["details"].([]any)
	for _, d := range details {
		dm, _ := d.(map[string]any)
		errs, _ := dm["errors"].([]any)
		for _, e := range errs {
			em := e.(map[string]any)
			var code string
			for k, v := range em["errorCode"].(map[string]any) {
				code = k + ":" + v.(string)
			}
			if loc, ok := em["location"].(map[string]any); ok {
				var parts []string
				for _, el := range loc["fieldPathElements"].([]any) {
					elm := el.(map[string]any)
					p := elm["fieldName"].(string)
					if idx, ok := elm["index"]; ok {
						p += fmt.Sprintf("[%v]", idx)
					}
					parts = append(parts, p)
				}
				code += "@" + strings.Join(parts, ".")
			}
			out = append(out, code)
		}
	}
	return out
}

func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t, googleadstest.Options{})
	good := url.Values{"grant_type": {"refresh_token"}, "client_id": {googleadstest.ClientID},
		"client_secret": {googleadstest.ClientSecret}, "refresh_token": {googleadstest.RefreshToken}}
	status, body := f.tokenRequest(t, good)
	if status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || !strings.HasPrefix(body["access_token"].(string), "ya29.") {
		t.Errorf("success: %d %v", status, body)
	}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c.Set(k, v)
		return c
	}
	for _, tc := range []struct {
		form   url.Values
		status int
		code   string
	}{
		{with("grant_type", "authorization_code"), 400, "unsupported_grant_type"},
		{with("client_secret", "nope"), 401, "invalid_client"},
		{with("client_id", "other"), 401, "invalid_client"},
		{with("refresh_token", ""), 400, "invalid_request"},
		{with("refresh_token", "1//someone-else"), 400, "invalid_grant"},
	} {
		status, body := f.tokenRequest(t, tc.form)
		if status != tc.status || body["error"] != tc.code || body["error_description"] == "" {
			t.Errorf("%v: %d %v", tc.form, status, body)
		}
	}
	// Basic authentication of the client is accepted too.
	req, _ := http.NewRequest(http.MethodPost, f.srv.TokenURL(), strings.NewReader("grant_type=refresh_token&refresh_token="+url.QueryEscape(googleadstest.RefreshToken)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(googleadstest.ClientID, googleadstest.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("basic: %v %v", resp, err)
	}
	resp.Body.Close()
	f.srv.RevokeRefreshToken()
	if status, body := f.tokenRequest(t, good); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("revoked: %d %v", status, body)
	}
	if n := f.srv.TokensIssued(); n != 3 {
		t.Errorf("%d tokens issued", n)
	}
}

func TestAccessTokens(t *testing.T) {
	f := newFixture(t, googleadstest.Options{TokenLifetime: 10 * time.Minute})
	body := uploadBody(row("g1", "o1", "2026-11-20 10:00:00+00:00"))
	if s, _, m := f.call(t, uploadPath, body); s != 200 {
		t.Fatalf("%d %v", s, m)
	}
	f.clock.Add(10 * time.Minute)
	s, _, m := f.call(t, uploadPath, body)
	if s != 401 || m["error"].(map[string]any)["status"] != "UNAUTHENTICATED" || errorCodes(m["error"])[0] != "authenticationError:OAUTH_TOKEN_EXPIRED" {
		t.Errorf("expired: %d %v", s, m)
	}
	s, _, m = f.call(t, uploadPath, body, "Authorization", "Bearer ya29.made-up")
	if s != 401 || errorCodes(m["error"])[0] != "authenticationError:OAUTH_TOKEN_INVALID" {
		t.Errorf("unknown: %d %v", s, m)
	}
	s, _, _ = f.call(t, uploadPath, body, "Authorization", "")
	if s != 401 {
		t.Errorf("missing: %d", s)
	}
	f2 := newFixture(t, googleadstest.Options{})
	f2.srv.ExpireTokens()
	if s, _, _ := f2.call(t, uploadPath, body); s != 401 {
		t.Errorf("ExpireTokens: %d", s)
	}
}

func TestUploadValidatesEveryField(t *testing.T) {
	f := newFixture(t, googleadstest.Options{})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 5, Name: "Page", Type: "WEBPAGE"})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 6, Name: "Gone", Status: "REMOVED"})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: "5555555555", ID: 7, Name: "Elsewhere"})
	f.srv.AddClick(googleadstest.Click{ID: "known", CustomerID: cust, Time: t0.Add(-24 * time.Hour)})
	ok := "2026-11-20 10:00:00+03:00"
	rows := []struct {
		row  string
		want string // "" is accepted
	}{
		{row("ok-1", "o1", ok), ""},
		{row("ok-2", "o2", "2026-11-20 10:00:00"), "dateError:INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET@conversions[1].conversion_date_time"},
		{row("ok-3", "o3", "2026-11-20T10:00:00+03:00"), "dateError:INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET@conversions[2].conversion_date_time"},
		{row("ok-4", "o4", "2026-11-20 10:00:00Z"), "dateError:INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET@conversions[3].conversion_date_time"},
		{row("ok-5", "o5", "2026-11-20 10:00:00+0300"), "dateError:INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET@conversions[4].conversion_date_time"},
		{row("ok-6", "o6", "2026-13-20 10:00:00+03:00"), "dateError:INVALID_FIELD_VALUES_IN_DATE_TIME@conversions[5].conversion_date_time"},
		{row("ok-7", "o7", ""), "requestError:REQUIRED_FIELD_MISSING@conversions[6].conversion_date_time"},
		{`{"conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":"` + ok + `"}`, "requestError:REQUIRED_FIELD_MISSING@conversions[7].gclid"},
		{`{"gbraid":"a","wbraid":"b","conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":"` + ok + `"}`, "conversionUploadError:GBRAID_WBRAID_BOTH_SET@conversions[8].wbraid"},
		{`{"gclid":"a","gbraid":"b","conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":"` + ok + `"}`, "fieldError:VALUE_MUST_BE_UNSET@conversions[9].gbraid"},
		{`{"wbraid":"wb-ok","conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":"` + ok + `"}`, ""},
		{`{"gclid":"x y","conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":"` + ok + `"}`, "conversionUploadError:UNPARSEABLE_GCLID@conversions[11].gclid"},
		{`{"gclid":"a1","conversionAction":"conversionActions/987","conversionDateTime":"` + ok + `"}`, "requestError:RESOURCE_NAME_MALFORMED@conversions[12].conversion_action"},
		{`{"gclid":"a2","conversionAction":"customers/1234567890/conversionActions/5","conversionDateTime":"` + ok + `"}`, "conversionUploadError:INVALID_CONVERSION_ACTION_TYPE@conversions[13].conversion_action"},
		{`{"gclid":"a3","conversionAction":"customers/1234567890/conversionActions/6","conversionDateTime":"` + ok + `"}`, "conversionUploadError:NO_CONVERSION_ACTION_FOUND@conversions[14].conversion_action"},
		{`{"gclid":"a4","conversionAction":"customers/5555555555/conversionActions/7","conversionDateTime":"` + ok + `"}`, "conversionUploadError:NO_CONVERSION_ACTION_FOUND@conversions[15].conversion_action"},
		{`{"gclid":"a5","conversionAction":"customers/1234567890/conversionActions/404","conversionDateTime":"` + ok + `"}`, "conversionUploadError:NO_CONVERSION_ACTION_FOUND@conversions[16].conversion_action"},
		{`{"gclid":"a6","conversionAction":"customers/1234567890/conversionActions/987","conversionDateTime":"` + ok + `","currencyCode":"eur"}`, "currencyCodeError:UNSUPPORTED@conversions[17].currency_code"},
		{row("known", "k1", "2026-11-19 11:59:59+00:00"), "conversionUploadError:CONVERSION_PRECEDES_EVENT@conversions[18].conversion_date_time"},
		{row("known", "k2", "2026-11-19 12:00:00+00:00"), ""},
		{row("ok-1", "o1", ok), "conversionUploadError:DUPLICATE_ORDER_ID@conversions[20].order_id"},
		{row("ok-1", "o1-b", ok), "conversionUploadError:DUPLICATE_CLICK_CONVERSION_IN_REQUEST@conversions[21].conversion_date_time"},
	}
	var body []string
	var want []string
	for _, r := range rows {
		body = append(body, r.row)
		if r.want != "" {
			want = append(want, r.want)
		}
	}
	s, _, m := f.call(t, uploadPath, uploadBody(body...))
	if s != 200 {
		t.Fatalf("%d %v", s, m)
	}
	got := errorCodes(m["partialFailureError"])
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	pfe := m["partialFailureError"].(map[string]any)
	if pfe["code"] != float64(3) || !strings.Contains(pfe["message"].(string), ", at conversions[1].conversion_date_time") {
		t.Errorf("partialFailureError %v", pfe["code"])
	}
	results := m["results"].([]any)
	if len(results) != len(rows) {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range rows {
		res := results[i].(map[string]any)
		if (r.want == "") != (len(res) > 0) {
			t.Errorf("result %d = %v for want %q", i, res, r.want)
		}
	}
	first := results[0].(map[string]any)
	if first["gclid"] != "ok-1" || first["conversionAction"] != "customers/1234567890/conversionActions/987" || first["conversionDateTime"] != ok {
		t.Errorf("result %v", first)
	}
	if _, isString := m["jobId"].(string); !isString {
		t.Errorf("jobId %v", m["jobId"])
	}
	if n := len(f.srv.Uploads()); n != 3 {
		t.Errorf("%d stored", n)
	}

	// Order ids are unique per action: the same again, and on another action.
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 988, Name: "Second"})
	again := `{"gclid":"other","conversionAction":"customers/1234567890/conversionActions/988","conversionDateTime":"` + ok + `","orderId":"o1"}`
	s, _, m = f.call(t, uploadPath, uploadBody(row("ok-9", "o1", ok), row("ok-1", "new", ok), again))
	if got := errorCodes(m["partialFailureError"]); s != 200 || strings.Join(got, ",") !=
		"conversionUploadError:ORDER_ID_ALREADY_IN_USE@conversions[0].order_id,conversionUploadError:CLICK_CONVERSION_ALREADY_EXISTS@conversions[1].conversion_date_time" {
		t.Errorf("%d %v", s, got)
	}
}

func TestUploadClickTimes(t *testing.T) {
	f := newFixture(t, googleadstest.Options{StrictClicks: true})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 30, Name: "Short window", LookbackDays: 30})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 31, Name: "New", CreatedAt: t0.Add(-5 * time.Hour)})
	f.srv.AddClick(googleadstest.Click{ID: "c-old", CustomerID: cust, Time: t0.AddDate(0, 0, -40)})
	f.srv.AddClick(googleadstest.Click{ID: "c-fresh", CustomerID: cust, Time: t0.Add(-5 * time.Hour)})
	f.srv.AddClick(googleadstest.Click{ID: "c-ok", CustomerID: cust, Time: t0.AddDate(0, 0, -2)})
	f.srv.AddClick(googleadstest.Click{ID: "c-other", CustomerID: "5555555555", Time: t0.AddDate(0, 0, -2)})
	at := func(action int, click string) string {
		return fmt.Sprintf(`{"gclid":%q,"conversionAction":"customers/1234567890/conversionActions/%d","conversionDateTime":"2026-11-20 11:00:00+00:00"}`, click, action)
	}
	_, _, m := f.call(t, uploadPath, uploadBody(at(987, "c-old"), at(30, "c-old"), at(987, "c-fresh"), at(31, "c-ok"), at(987, "c-other"), at(987, "unknown"), at(987, "c-ok")))
	want := "conversionUploadError:EXPIRED_EVENT@conversions[1].gclid," +
		"conversionUploadError:TOO_RECENT_EVENT@conversions[2].gclid," +
		"conversionUploadError:TOO_RECENT_CONVERSION_ACTION@conversions[3].conversion_action," +
		"conversionUploadError:INVALID_CUSTOMER_FOR_CLICK@conversions[4].gclid," +
		"conversionUploadError:EVENT_NOT_FOUND@conversions[5].gclid"
	if got := strings.Join(errorCodes(m["partialFailureError"]), ","); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Time passes: the click is no longer too recent.
	f.clock.Add(time.Hour)
	_, _, m = f.call(t, uploadPath, uploadBody(at(987, "c-fresh")))
	if m["partialFailureError"] != nil {
		t.Errorf("after 6 h: %v", errorCodes(m["partialFailureError"]))
	}
}

func TestUploadRequestLevelErrors(t *testing.T) {
	f := newFixture(t, googleadstest.Options{})
	ok := row("g", "o", "2026-11-20 10:00:00+00:00")
	many := make([]string, 2001)
	for i := range many {
		many[i] = row(fmt.Sprint("g", i), fmt.Sprint("o", i), "2026-11-20 10:00:00+00:00")
	}
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"partialFailure false", `{"conversions":[` + ok + `],"partialFailure":false}`, 400, "partialFailureError:PARTIAL_FAILURE_MODE_REQUIRED"},
		{"no conversions", `{"conversions":[],"partialFailure":true}`, 400, "requestError:REQUIRED_FIELD_MISSING@conversions"},
		{"2001 conversions", uploadBody(many...), 400, "conversionUploadError:TOO_MANY_CONVERSIONS_IN_REQUEST"},
		{"2000 conversions", uploadBody(many[:2000]...), 200, ""},
		{"unknown field", `{"conversions":[{"gclid":"g","click_id":"x"}],"partialFailure":true}`, 400, ""},
		{"bad consent", `{"conversions":[{"gclid":"g","consent":{"adUserData":"YES"}}],"partialFailure":true}`, 400, ""},
		{"not JSON", `conversions=1`, 400, ""},
	} {
		s, _, m := f.call(t, uploadPath, tc.body)
		if s != tc.status {
			t.Errorf("%s: %d %v", tc.name, s, m)
			continue
		}
		if tc.status == 400 {
			e := m["error"].(map[string]any)
			if e["status"] != "INVALID_ARGUMENT" || e["code"] != float64(400) {
				t.Errorf("%s: %v", tc.name, e)
			}
			if codes := errorCodes(e); tc.code != "" && (len(codes) != 1 || codes[0] != tc.code) {
				t.Errorf("%s: %v", tc.name, codes)
			}
			if tc.code == "" && !strings.Contains(fmt.Sprint(e["details"]), "google.rpc.BadRequest") {
				t.Errorf("%s: no BadRequest detail: %v", tc.name, e)
			}
		}
	}
	// validateOnly checks but stores nothing.
	before := len(f.srv.Uploads())
	s, _, _ := f.call(t, uploadPath, `{"conversions":[`+row("vo", "vo", "2026-11-20 10:00:00+00:00")+`],"partialFailure":true,"validateOnly":true}`)
	if s != 200 || len(f.srv.Uploads()) != before {
		t.Errorf("validateOnly: %d, stored %d", s, len(f.srv.Uploads())-before)
	}
}

func TestCustomersAndManagers(t *testing.T) {
	f := newFixture(t, googleadstest.Options{})
	f.srv.AddCustomer(googleadstest.Customer{ID: "2222222222", ManagerID: "9999999999"})
	body := uploadBody(row("g", "o", "2026-11-20 10:00:00+00:00"))
	for _, tc := range []struct {
		path, login string
		status      int
		code        string
	}{
		{"/v26/customers/3333333333:uploadClickConversions", "", 403, "authorizationError:USER_PERMISSION_DENIED"},
		{"/v26/customers/123-456-7890:uploadClickConversions", "", 400, "requestError:INVALID_CUSTOMER_ID"},
		{"/v26/customers/2222222222:uploadClickConversions", "", 403, "authorizationError:USER_PERMISSION_DENIED"},
		{"/v26/customers/2222222222:uploadClickConversions", "8888888888", 403, "authorizationError:USER_PERMISSION_DENIED"},
		{"/v26/customers/2222222222:uploadClickConversions", "999-999-9999", 400, "headerError:INVALID_LOGIN_CUSTOMER_ID"},
		{"/v26/customers/2222222222:uploadClickConversions", "9999999999", 200, ""},
		{"/v26/customers/1234567890:uploadClickConversions", "1234567890", 200, ""},
		{"/v19/customers/1234567890:uploadClickConversions", "", 404, ""},
		{"/v26/customers/1234567890:mutate", "", 404, ""},
	} {
		s, _, m := f.call(t, tc.path, body, "login-customer-id", tc.login)
		if s != tc.status {
			t.Errorf("%s %s: %d %v", tc.path, tc.login, s, m)
			continue
		}
		if tc.code != "" {
			if codes := errorCodes(m["error"]); len(codes) != 1 || codes[0] != tc.code {
				t.Errorf("%s %s: %v", tc.path, tc.login, codes)
			}
		}
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t, googleadstest.Options{})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 1000, Name: `Lead's "best" \ one`})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: cust, ID: 1001, Name: "Gone", Status: "REMOVED"})
	f.srv.AddConversionAction(googleadstest.ConversionAction{CustomerID: "5555555555", ID: 1002, Name: "Qualified lead"})
	search := func(q string) (int, map[string]any) {
		b, _ := json.Marshal(map[string]string{"query": q})
		s, _, m := f.call(t, searchPath, string(b))
		return s, m
	}
	names := func(m map[string]any) string {
		var out []string
		rs, _ := m["results"].([]any)
		for _, r := range rs {
			ca := r.(map[string]any)["conversionAction"].(map[string]any)
			out = append(out, fmt.Sprint(ca["name"], "|", ca["resourceName"], "|", ca["status"], "|", ca["type"]))
		}
		return strings.Join(out, ";")
	}
	sel := "SELECT conversion_action.resource_name, conversion_action.name, conversion_action.status, conversion_action.type FROM conversion_action "
	for _, tc := range []struct{ where, want string }{
		{`WHERE conversion_action.name = 'Qualified lead'`, "Qualified lead|customers/1234567890/conversionActions/987|ENABLED|UPLOAD_CLICKS"},
		{`WHERE conversion_action.name = 'Lead\'s "best" \\ one'`, `Lead's "best" \ one|customers/1234567890/conversionActions/1000|ENABLED|UPLOAD_CLICKS`},
		{`WHERE conversion_action.name = "Lead's \"best\" \\ one"`, `Lead's "best" \ one|customers/1234567890/conversionActions/1000|ENABLED|UPLOAD_CLICKS`},
		{`WHERE conversion_action.name = 'Nope'`, ""},
		{`WHERE conversion_action.status != 'REMOVED' AND conversion_action.id IN (987, 1000) ORDER BY conversion_action.id DESC LIMIT 1`, `Lead's "best" \ one|customers/1234567890/conversionActions/1000|ENABLED|UPLOAD_CLICKS`},
		{`WHERE conversion_action.status = REMOVED`, "Gone|customers/1234567890/conversionActions/1001|REMOVED|UPLOAD_CLICKS"},
		{`where conversion_action.name not in ('Gone', 'Qualified lead')`, `Lead's "best" \ one|customers/1234567890/conversionActions/1000|ENABLED|UPLOAD_CLICKS`},
	} {
		s, m := search(sel + tc.where)
		if s != 200 || names(m) != tc.want {
			t.Errorf("%s: %d %q", tc.where, s, names(m))
		}
		if m["fieldMask"] != "conversionAction.resourceName,conversionAction.name,conversionAction.status,conversionAction.type" {
			t.Errorf("fieldMask %v", m["fieldMask"])
		}
	}
	for _, tc := range []struct{ q, code string }{
		{sel + `WHERE conversion_action.name = 'Lead's'`, "queryError:STRING_NOT_TERMINATED"},
		{sel + `WHERE conversion_action.name = 'x' 'y'`, "queryError:UNEXPECTED_INPUT"},
		{sel + `WHERE conversion_action.name = 'open`, "queryError:STRING_NOT_TERMINATED"},
		{sel + `WHERE conversion_action.name = 'a\nb'`, "queryError:BAD_ESCAPE_SEQUENCE"},
		{sel + "WHERE conversion_action.name = 'a\nb'", "queryError:PROHIBITED_NEWLINE_IN_STRING"},
		{"SELECT campaign.name FROM campaign", "queryError:UNRECOGNIZED_FIELD"},
		{"SELECT conversion_action.name FROM campaign", "queryError:BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"},
		{"conversion_action.name FROM conversion_action", "queryError:EXPECTED_SELECT"},
		{"SELECT conversion_action.name conversion_action", "queryError:EXPECTED_FROM"},
		{sel + "WHERE conversion_action.name", "queryError:UNEXPECTED_END_OF_QUERY"},
		{sel + "WHERE conversion_action.name LIKE 'x'", "queryError:BAD_OPERATOR"},
		{sel + "WHERE conversion_action.name = 'x' LIMIT 0", "queryError:BAD_LIMIT_VALUE"},
		{"", "queryError:QUERY_ERROR"},
	} {
		s, m := search(tc.q)
		if codes := errorCodes(m["error"]); s != 400 || len(codes) != 1 || codes[0] != tc.code {
			t.Errorf("%q: %d %v", tc.q, s, codes)
		}
	}
}

func TestFailuresAreOneShotAndShaped(t *testing.T) {
	f := newFixture(t, googleadstest.Options{})
	f.srv.FailNext(
		googleadstest.Failure{Endpoint: googleadstest.EndpointSearch, Status: 500},
		googleadstest.Failure{Status: 429, RetryAfter: "17", RetryDelay: "17s"},
		googleadstest.Failure{Status: 503, RawBody: "<html>busy</html>"},
	)
	body := uploadBody(row("g", "o", "2026-11-20 10:00:00+00:00"))
	s, h, m := f.call(t, uploadPath, body) // the search failure waits for a search
	e := m["error"].(map[string]any)
	if s != 429 || h.Get("Retry-After") != "17" || e["status"] != "RESOURCE_EXHAUSTED" || errorCodes(e)[0] != "quotaError:RESOURCE_EXHAUSTED" ||
		!strings.Contains(fmt.Sprint(e["details"]), "retryDelay:17s") {
		t.Errorf("429: %d %v %v", s, h, m)
	}
	s, h, _ = f.call(t, uploadPath, body)
	if s != 503 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("503: %d %v", s, h)
	}
	b, _ := json.Marshal(map[string]string{"query": "SELECT conversion_action.name FROM conversion_action"})
	s, _, m = f.call(t, searchPath, string(b))
	if s != 500 || m["error"].(map[string]any)["status"] != "INTERNAL" || errorCodes(m["error"])[0] != "internalError:INTERNAL_ERROR" {
		t.Errorf("500: %d %v", s, m)
	}
	if s, _, _ = f.call(t, uploadPath, body); s != 200 {
		t.Errorf("after the failures: %d", s)
	}
	f.srv.FailClick("g-row", googleadstest.RowError{Code: "TOO_RECENT_EVENT"})
	_, _, m = f.call(t, uploadPath, uploadBody(row("g-row", "o-row", "2026-11-20 10:00:00+00:00")))
	if c := errorCodes(m["partialFailureError"]); len(c) != 1 || c[0] != "conversionUploadError:TOO_RECENT_EVENT@conversions[0].gclid" {
		t.Errorf("FailClick: %v", c)
	}
	f.srv.ClearClickFailure("g-row")
	_, _, m = f.call(t, uploadPath, uploadBody(row("g-row", "o-row", "2026-11-20 10:00:00+00:00")))
	if m["partialFailureError"] != nil {
		t.Errorf("after ClearClickFailure: %v", m)
	}
	// Everything was recorded, in order.
	var got []string
	for _, r := range f.srv.Requests() {
		got = append(got, r.Endpoint)
	}
	if strings.Join(got, ",") != "token,uploadClickConversions,uploadClickConversions,googleAds:search,uploadClickConversions,uploadClickConversions,uploadClickConversions" {
		t.Errorf("recorded %v", got)
	}
}

func TestUsableAsAHandler(t *testing.T) {
	srv := googleadstest.New(googleadstest.Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "client_id": {googleadstest.ClientID},
		"client_secret": {googleadstest.ClientSecret}, "refresh_token": {googleadstest.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	srv.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "access_token") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}
