// Package googleadstest is an in-process fake of the Google Ads REST API and
// Google's OAuth token endpoint, for tests and the local stack.
//
// It answers like Google: the token endpoint hands out access tokens with an
// expiry and refuses a revoked refresh token with invalid_grant;
// googleAds:search runs GAQL over a set of conversion actions;
// uploadClickConversions checks every field Google checks (the date format
// with its offset, exactly one click id, an UPLOAD_CLICKS action that exists
// and is not removed, order ids unique per action, the conversion after its
// click for clicks it was told about) and answers with partialFailureError,
// results index-aligned with the request. It can be told to fail: an HTTP
// error with Google's google.rpc.Status body (429, 500, 503, 401, 403, …),
// any partialFailureError code for chosen click ids, stale tokens. It records
// every request it received.
//
// NewServer starts it on a local port; Server is also an http.Handler.
package googleadstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/googleads"
)

// Credentials the server accepts unless told otherwise.
const (
	ClientID     = "fake-client-id.apps.googleusercontent.com"
	ClientSecret = "fake-client-s3cret"
	RefreshToken = "1//fake-refresh-t0ken"
)

// Endpoints, as Request.Endpoint and Failure.Endpoint name them.
const (
	EndpointToken  = "token"
	EndpointUpload = "uploadClickConversions"
	EndpointSearch = "googleAds:search"
)

// Options configure a server. The zero value works.
type Options struct {
	// Now is the server's clock (token expiry, TOO_RECENT_*); default time.Now.
	Now func() time.Time
	// ClientID, ClientSecret and RefreshToken it accepts; defaults above.
	ClientID, ClientSecret, RefreshToken string
	// TokenLifetime of an access token; default one hour (expires_in 3600).
	TokenLifetime time.Duration
	// Versions served; default v23 to v26. Others answer 404.
	Versions []string
	// StrictClicks refuses click ids it was not told about (EVENT_NOT_FOUND);
	// by default unknown clicks are accepted without time checks.
	StrictClicks bool
}

// Customer is a Google Ads account the credentials can reach.
type Customer struct {
	ID string
	// ManagerID, when set, is the manager account access goes through: requests
	// must carry it as login-customer-id.
	ManagerID string
}

// ConversionAction is one conversion action of a customer.
type ConversionAction struct {
	CustomerID string
	ID         int64
	Name       string
	Status     string // ENABLED (default), HIDDEN, REMOVED
	Type       string // UPLOAD_CLICKS (default), WEBPAGE, …
	Category   string // default QUALIFIED_LEAD
	// CreatedAt, when within 6 hours of now, makes uploads answer
	// TOO_RECENT_CONVERSION_ACTION. Zero is long ago.
	CreatedAt time.Time
	// LookbackDays is the click-through window; default 90.
	LookbackDays int
}

// ResourceName is the action's resource name.
func (a ConversionAction) ResourceName() string {
	return fmt.Sprintf("customers/%s/conversionActions/%d", a.CustomerID, a.ID)
}

// Click is an ad click the server knows the time and account of.
type Click struct {
	ID         string // the gclid, gbraid or wbraid
	CustomerID string
	Time       time.Time
}

// RowError is a partialFailureError the server gives every row with a click id.
type RowError struct {
	// Kind is the errorCode key; default conversionUploadError.
	Kind string
	// Code, e.g. TOO_RECENT_EVENT.
	Code string
	// Message; default Google's message for the code.
	Message string
}

// Failure is an HTTP error answer for one request.
type Failure struct {
	// Endpoint it applies to: EndpointUpload, EndpointSearch, EndpointToken;
	// empty is the next Ads API call (upload or search), never the token.
	Endpoint string
	// Status is the HTTP status: 429, 500, 503, 504, 401, 403, 400, 404, …
	Status int
	// Kind and Code override the errorCode of the body (defaults by status:
	// quotaError RESOURCE_EXHAUSTED, internalError INTERNAL_ERROR or
	// TRANSIENT_ERROR, authenticationError OAUTH_TOKEN_INVALID,
	// authorizationError USER_PERMISSION_DENIED, requestError …).
	Kind, Code string
	Message    string
	// RetryAfter is sent as the Retry-After header when set ("30", or a date).
	RetryAfter string
	// RetryDelay is quotaErrorDetails.retryDelay when set ("30s").
	RetryDelay string
	// RawBody replaces the JSON body (a front end's HTML page, say).
	RawBody string
}

// Request is one request the server received.
type Request struct {
	Endpoint string
	Method   string
	Path     string
	Header   http.Header
	Body     []byte
	// Form is the parsed body of a token request.
	Form url.Values
}

// Upload is one conversion the server accepted.
type Upload struct {
	CustomerID string
	Conversion ClickConversion
	JobID      int64
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of both the Ads API and the token endpoint
	// (URL + "/token"); empty for a Server used only as a handler.
	URL string

	opts Options
	srv  *httptest.Server

	mu        sync.Mutex
	customers map[string]Customer
	actions   map[string]*ConversionAction // by resource name
	clicks    map[string]Click
	rowErrors map[string]RowError
	failures  []Failure
	tokens    map[string]time.Time // access token → expiry
	revoked   bool
	issued    int
	requests  []Request
	uploads   []Upload
	orderIDs  map[string]bool // action + "\x00" + order id
	clickKeys map[string]bool // action + click + unix time
	nextJob   int64
	nextReq   int
}

// New makes a server without starting it (use it as an http.Handler).
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ClientID == "" {
		opts.ClientID = ClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = ClientSecret
	}
	if opts.RefreshToken == "" {
		opts.RefreshToken = RefreshToken
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if len(opts.Versions) == 0 {
		opts.Versions = []string{"v23", "v24", "v25", "v26"}
	}
	return &Server{
		opts:      opts,
		customers: map[string]Customer{},
		actions:   map[string]*ConversionAction{},
		clicks:    map[string]Click{},
		rowErrors: map[string]RowError{},
		tokens:    map[string]time.Time{},
		orderIDs:  map[string]bool{},
		clickKeys: map[string]bool{},
		nextJob:   1,
	}
}

// NewServer starts a server on a local port; Close stops it.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// Close stops a server started by NewServer.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// TokenURL is the OAuth token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/token" }

// ClientConfig is a googleads.Config that reaches this server with the
// credentials it accepts and its clock.
func (s *Server) ClientConfig() googleads.Config {
	cfg := googleads.Config{
		BaseURL:      s.URL,
		TokenURL:     s.TokenURL(),
		ClientID:     s.opts.ClientID,
		ClientSecret: config.Secret(s.opts.ClientSecret),
		RefreshToken: config.Secret(s.opts.RefreshToken),
		Now:          s.opts.Now,
	}
	if s.srv != nil {
		cfg.HTTPClient = s.srv.Client()
	}
	return cfg
}

// AddCustomer makes an account reachable.
func (s *Server) AddCustomer(c Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers[c.ID] = c
}

// AddConversionAction adds (or replaces) an action, adding its customer if
// needed, and returns it with its defaults filled in.
func (s *Server) AddConversionAction(a ConversionAction) ConversionAction {
	if a.Status == "" {
		a.Status = "ENABLED"
	}
	if a.Type == "" {
		a.Type = "UPLOAD_CLICKS"
	}
	if a.Category == "" {
		a.Category = "QUALIFIED_LEAD"
	}
	if a.LookbackDays == 0 {
		a.LookbackDays = 90
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[a.CustomerID]; !ok {
		s.customers[a.CustomerID] = Customer{ID: a.CustomerID}
	}
	cp := a
	s.actions[a.ResourceName()] = &cp
	return a
}

// SetActionStatus changes an action's status (REMOVED, say).
func (s *Server) SetActionStatus(resourceName, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.actions[resourceName]; ok {
		a.Status = status
	}
}

// AddClick tells the server when and in which account a click happened.
func (s *Server) AddClick(c Click) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clicks[c.ID] = c
}

// FailClick makes every upload of a conversion with this click id fail with
// e in partialFailureError, until ClearClickFailure.
func (s *Server) FailClick(clickID string, e RowError) {
	if e.Kind == "" {
		e.Kind = "conversionUploadError"
	}
	if e.Message == "" {
		e.Message = messageFor(e.Code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rowErrors[clickID] = e
}

// ClearClickFailure undoes FailClick.
func (s *Server) ClearClickFailure(clickID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rowErrors, clickID)
}

// FailNext queues HTTP failures: each answers one later request of its
// endpoint, in order.
func (s *Server) FailNext(fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fs...)
}

// ExpireTokens makes every access token issued so far stale: the API answers
// 401 to them.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
}

// RevokeRefreshToken makes the token endpoint answer invalid_grant.
func (s *Server) RevokeRefreshToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// RequestsTo returns the requests to one endpoint.
func (s *Server) RequestsTo(endpoint string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}

// Uploads returns the conversions accepted so far.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uploads)
}

// TokensIssued is how many access tokens the token endpoint handed out.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ServeHTTP routes: POST /token, POST /{version}/customers/{id}:uploadClickConversions,
// POST /{version}/customers/{id}/googleAds:search.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	endpoint, version, customer := route(r.URL.Path)
	rec := Request{Endpoint: endpoint, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	if endpoint == EndpointToken {
		rec.Form, _ = url.ParseQuery(string(body))
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	if endpoint == "" || r.Method != http.MethodPost {
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", nil)
		return
	}
	if f, ok := s.takeFailure(endpoint); ok {
		s.writeFailure(w, endpoint, f)
		return
	}
	if endpoint == EndpointToken {
		s.serveToken(w, r, rec.Form)
		return
	}
	if !slices.Contains(s.opts.Versions, version) {
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", nil)
		return
	}
	if !s.authorized(w, r) || !s.reachable(w, r, customer) {
		return
	}
	switch endpoint {
	case EndpointUpload:
		s.serveUpload(w, customer, body)
	case EndpointSearch:
		s.serveSearch(w, customer, body)
	}
}

// route splits a path into its endpoint, API version and customer id.
func route(path string) (endpoint, version, customer string) {
	if path == "/token" {
		return EndpointToken, "", ""
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[1] == "customers" && strings.HasSuffix(parts[2], ":uploadClickConversions"):
		return EndpointUpload, parts[0], strings.TrimSuffix(parts[2], ":uploadClickConversions")
	case len(parts) == 4 && parts[1] == "customers" && parts[3] == "googleAds:search":
		return EndpointSearch, parts[0], parts[2]
	}
	return "", "", ""
}

func (s *Server) takeFailure(endpoint string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if f.Endpoint == endpoint || (f.Endpoint == "" && endpoint != EndpointToken) {
			s.failures = slices.Delete(s.failures, i, i+1)
			return f, true
		}
	}
	return Failure{}, false
}

// authorized checks the bearer token as Google does.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		writeStatus(w, http.StatusUnauthorized, "UNAUTHENTICATED",
			"Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
			[]failureError{{ErrorCode: map[string]string{"authenticationError": "AUTHENTICATION_ERROR"}, Message: "Authentication of the request failed."}})
		return false
	}
	s.mu.Lock()
	expiry, known := s.tokens[tok]
	now := s.opts.Now()
	s.mu.Unlock()
	if known && now.Before(expiry) {
		return true
	}
	code, msg := "OAUTH_TOKEN_INVALID", "Oauth token is invalid."
	if known {
		code, msg = "OAUTH_TOKEN_EXPIRED", "Oauth token is expired."
	}
	writeStatus(w, http.StatusUnauthorized, "UNAUTHENTICATED",
		"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
		[]failureError{{ErrorCode: map[string]string{"authenticationError": code}, Message: msg}})
	return false
}

// reachable checks the customer id and login-customer-id.
func (s *Server) reachable(w http.ResponseWriter, r *http.Request, customer string) bool {
	if !digits(customer, 10) {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"requestError": "INVALID_CUSTOMER_ID"}, Message: fmt.Sprintf("Invalid customer ID '%s'.", customer)}})
		return false
	}
	login := r.Header.Get("login-customer-id")
	if login != "" && !digits(login, 10) {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument.",
			[]failureError{{ErrorCode: map[string]string{"headerError": "INVALID_LOGIN_CUSTOMER_ID"}, Message: "The login customer ID could not be validated."}})
		return false
	}
	s.mu.Lock()
	c, ok := s.customers[customer]
	s.mu.Unlock()
	allowed := ok && ((c.ManagerID == "" && (login == "" || login == customer)) || (c.ManagerID != "" && login == c.ManagerID))
	if !allowed {
		writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission",
			[]failureError{{ErrorCode: map[string]string{"authorizationError": "USER_PERMISSION_DENIED"},
				Message: "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header. See https://developers.google.com/google-ads/api/docs/concepts/call-structure#cid"}})
		return false
	}
	return true
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// serveToken is Google's OAuth token endpoint for grant_type=refresh_token.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, form url.Values) {
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	switch {
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Invalid Content-Type.")
		return
	case form.Get("grant_type") != "refresh_token":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+form.Get("grant_type"))
		return
	case clientID != s.opts.ClientID || secret != s.opts.ClientSecret:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case form.Get("refresh_token") == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked || form.Get("refresh_token") != s.opts.RefreshToken {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	s.issued++
	tok := fmt.Sprintf("ya29.fake-access-%d", s.issued)
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenLifetime)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_in":   int(s.opts.TokenLifetime / time.Second),
		"scope":        "https://www.googleapis.com/auth/adwords",
		"token_type":   "Bearer",
	})
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func (s *Server) writeFailure(w http.ResponseWriter, endpoint string, f Failure) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.RawBody != "" {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(f.Status)
		io.Copy(w, bytes.NewBufferString(f.RawBody))
		return
	}
	if endpoint == EndpointToken {
		code := f.Code
		if code == "" {
			code = "internal_failure"
			if f.Status < 500 {
				code = "invalid_request"
			}
		}
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		writeOAuthError(w, f.Status, code, msg)
		return
	}
	status, message, kind, code, errMsg := failureDefaults(f.Status)
	if f.Kind != "" {
		kind = f.Kind
	}
	if f.Code != "" {
		code = f.Code
	}
	if f.Message != "" {
		errMsg = f.Message
	}
	e := failureError{ErrorCode: map[string]string{kind: code}, Message: errMsg}
	if f.RetryDelay != "" {
		e.Details = &errorDetails{QuotaErrorDetails: &quotaErrorDetails{RateScope: "ACCOUNT", RateName: "Number of operations for basic access", RetryDelay: f.RetryDelay}}
	}
	writeStatus(w, f.Status, status, message, []failureError{e})
}

// failureDefaults are the bodies Google sends for each HTTP status.
func failureDefaults(httpStatus int) (status, message, kind, code, errMsg string) {
	switch httpStatus {
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", "quotaError", "RESOURCE_EXHAUSTED", "Too many requests. Retry in 30 seconds."
	case http.StatusInternalServerError:
		return "INTERNAL", "Internal error encountered.", "internalError", "INTERNAL_ERROR", "An internal error has occurred."
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE", "The service is currently unavailable.", "internalError", "TRANSIENT_ERROR", "The request failed due to a transient error. Retry the request."
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED", "The request deadline was exceeded.", "internalError", "DEADLINE_EXCEEDED", "The request did not complete in time."
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid."
	case http.StatusForbidden:
		return "PERMISSION_DENIED", "The caller does not have permission", "authorizationError", "USER_PERMISSION_DENIED", "User doesn't have permission to access customer."
	case http.StatusNotFound:
		return "NOT_FOUND", "Requested entity was not found.", "requestError", "RESOURCE_NOT_FOUND", "Resource was not found."
	}
	return "INVALID_ARGUMENT", "Request contains an invalid argument.", "requestError", "UNKNOWN", "The request was invalid."
}
