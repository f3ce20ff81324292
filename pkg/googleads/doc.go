// Package googleads uploads offline click conversions to the Google Ads REST
// API (uploadClickConversions, always with partialFailure) and says, per
// conversion, what became of it: an Outcome of uploaded, already_uploaded,
// retry_later (with when), permanent or config_error, with Google's code and
// message. It knows nothing of our tables.
//
// A Client is made from a Config: base URL and API version, the OAuth client
// and refresh token (access tokens come from golang.org/x/oauth2 and are
// cached until shortly before they expire; a 401 refreshes once and retries
// once), an optional manager (login-customer-id) and developer token, an
// *http.Client and a clock. Conversion actions are given by numeric id,
// resource name or name; names are found with a googleAds:search GAQL query
// and cached. More than 2,000 conversions are split into several calls.
// Errors located by partialFailureError's fieldPathElements index are
// matched to their rows; whole-request errors (quota, 5xx, authentication,
// authorization) are classified the same way, honouring Retry-After.
//
// No secret (client secret, refresh token, access token, developer token)
// appears in an error, an Outcome or a logged Config.
//
// googleadstest is an in-process fake of the same API for tests and the
// local stack.
package googleads
