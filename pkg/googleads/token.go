package googleads

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// tokenEarly is how long before its expiry a cached access token is replaced,
// so that a token never expires between our check and Google's.
const tokenEarly = time.Minute

// tokens caches one access token for a refresh token. x/oauth2 fetches it
// (its refresh-token source speaks the token endpoint); the cache is ours so
// that expiry follows the injected clock.
type tokens struct {
	cfg     oauth2.Config
	hc      *http.Client
	now     func() time.Time
	mu      sync.Mutex
	refresh string
	access  string
	expiry  time.Time // zero: Google named no lifetime; keep until a 401
}

func newTokens(cfg Config, hc *http.Client, now func() time.Time) *tokens {
	return &tokens{
		cfg: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: string(cfg.ClientSecret),
			// Form fields, as EXTERNAL-APIS.md describes the request; Google
			// accepts Basic too, but then nothing needs guessing.
			Endpoint: oauth2.Endpoint{TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		hc:      hc,
		now:     now,
		refresh: string(cfg.RefreshToken),
	}
}

// token returns a valid access token, fetching one when there is none or it
// is about to expire. One fetch at a time: concurrent callers wait for it.
func (t *tokens) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.access != "" && (t.expiry.IsZero() || t.now().Before(t.expiry)) {
		return t.access, nil
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, t.hc)
	tok, err := t.cfg.TokenSource(octx, &oauth2.Token{RefreshToken: t.refresh}).Token()
	if err != nil {
		return "", t.failure(ctx, err)
	}
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	if lifetime <= 0 && !tok.Expiry.IsZero() {
		lifetime = time.Until(tok.Expiry)
	}
	t.access, t.expiry = tok.AccessToken, time.Time{}
	if lifetime > 0 {
		t.expiry = t.now().Add(lifetime - tokenEarly)
	}
	if tok.RefreshToken != "" {
		t.refresh = tok.RefreshToken
	}
	return t.access, nil
}

// invalidate drops the cached token if it is still the one that Google just
// refused, so that the next call fetches a new one.
func (t *tokens) invalidate(stale string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.access == stale {
		t.access, t.expiry = "", time.Time{}
	}
}

// failure turns a token error into the outcome every waiting conversion
// gets. The messages name Google's error code and description only: the
// request carried the client secret and the refresh token, the answer does not.
func (t *tokens) failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := t.now()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := re.ErrorCode
		if code == "" {
			code = fmt.Sprintf("TOKEN_HTTP_%d", status)
		}
		msg := fmt.Sprintf("OAuth token endpoint answered %d %s", status, code)
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if status >= 500 || status == http.StatusTooManyRequests {
			return &outcomeError{Outcome{Status: RetryLater, Code: code, Message: msg, RetryAt: now.Add(defaultRetryDelay)}}
		}
		if code == "invalid_grant" {
			msg += " (the refresh token is revoked or expired: consent again and configure the new refresh token)"
		}
		return &outcomeError{Outcome{Status: ConfigError, Code: code, Message: msg}}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &outcomeError{Outcome{Status: RetryLater, Code: CodeTransport, Message: "OAuth token endpoint: " + ue.Err.Error(), RetryAt: now.Add(defaultRetryDelay)}}
	}
	// Left: an answer without an access token, or one x/oauth2 cannot parse.
	return &outcomeError{Outcome{Status: RetryLater, Code: CodeBadResponse, Message: "OAuth token endpoint: " + err.Error(), RetryAt: now.Add(defaultRetryDelay)}}
}

// outcomeError carries an outcome that applies to every conversion of a
// request (a token failure, a network error).
type outcomeError struct{ o Outcome }

func (e *outcomeError) Error() string { return e.o.Code + ": " + e.o.Message }
