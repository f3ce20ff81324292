package googleads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Defaults, from EXTERNAL-APIS.md. The version changes a few times a year:
// it is configuration.
const (
	DefaultBaseURL  = "https://googleads.googleapis.com"
	DefaultVersion  = "v26"
	DefaultTokenURL = "https://oauth2.googleapis.com/token"
	// DefaultActionCacheTTL: a conversion action's name → resource mapping
	// changes rarely.
	DefaultActionCacheTTL = time.Hour
)

// MaxConversionsPerRequest is Google's limit for one uploadClickConversions.
const MaxConversionsPerRequest = 2000

// Config is what a Client needs. Secrets are config.Secret, so printing or
// logging a Config shows none of them.
type Config struct {
	BaseURL  string // default DefaultBaseURL
	Version  string // default DefaultVersion
	TokenURL string // default DefaultTokenURL

	ClientID     string
	ClientSecret config.Secret
	RefreshToken config.Secret
	// LoginCustomerID is the manager account, only when access goes through
	// one (dashes allowed).
	LoginCustomerID string
	// DeveloperToken is sent only when set (Google no longer requires it).
	DeveloperToken config.Secret

	HTTPClient     *http.Client     // default: 60-second timeout
	Now            func() time.Time // default time.Now
	ActionCacheTTL time.Duration    // default DefaultActionCacheTTL
}

// LogValue keeps the secrets out of logs even when a Config is logged whole.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL), slog.String("version", c.Version), slog.String("token_url", c.TokenURL),
		slog.String("client_id", c.ClientID), slog.Any("client_secret", c.ClientSecret),
		slog.Any("refresh_token", c.RefreshToken), slog.String("login_customer_id", c.LoginCustomerID),
		slog.Any("developer_token", c.DeveloperToken))
}

// Client talks to the Google Ads REST API for one set of credentials. It is
// safe for concurrent use; it caches the access token and resolved
// conversion-action names.
type Client struct {
	base, version  string
	login          string
	developerToken string
	hc             *http.Client
	now            func() time.Time
	tokens         *tokens
	actions        *actionCache
}

// New checks the configuration and makes a client. Errors name the field,
// never its value.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ActionCacheTTL <= 0 {
		cfg.ActionCacheTTL = DefaultActionCacheTTL
	}
	for _, u := range []struct{ name, v string }{{"BaseURL", cfg.BaseURL}, {"TokenURL", cfg.TokenURL}} {
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("googleads: %s must be an http(s) URL", u.name)
		}
	}
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("googleads: ClientID is required")
	case cfg.ClientSecret == "":
		return nil, errors.New("googleads: ClientSecret is required")
	case cfg.RefreshToken == "":
		return nil, errors.New("googleads: RefreshToken is required")
	case strings.ContainsAny(cfg.Version, "/?# ") || cfg.Version == "":
		return nil, errors.New("googleads: Version must be like v26")
	}
	login := ""
	if cfg.LoginCustomerID != "" {
		id, err := NormalizeCustomerID(cfg.LoginCustomerID)
		if err != nil {
			return nil, fmt.Errorf("googleads: LoginCustomerID: %w", err)
		}
		login = id
	}
	return &Client{
		base:           strings.TrimRight(cfg.BaseURL, "/"),
		version:        cfg.Version,
		login:          login,
		developerToken: string(cfg.DeveloperToken),
		hc:             cfg.HTTPClient,
		now:            cfg.Now,
		tokens:         newTokens(cfg, cfg.HTTPClient, cfg.Now),
		actions:        newActionCache(cfg.ActionCacheTTL),
	}, nil
}

// NormalizeCustomerID accepts a customer id with or without dashes
// ("123-456-7890", "1234567890") and returns its ten digits.
func NormalizeCustomerID(s string) (string, error) {
	id := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	if len(id) != 10 {
		return "", fmt.Errorf("customer id %q: want 10 digits (dashes allowed)", s)
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("customer id %q: want 10 digits (dashes allowed)", s)
		}
	}
	return id, nil
}

// answer is a non-transport result of one API call.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// maxAnswer bounds what we read from Google: 2,000 results are well under it.
const maxAnswer = 32 << 20

// post sends one authenticated API call. A 401 drops the token, fetches a new
// one and sends the call once more; a second 401 is returned as it is. The
// error is the caller's context error or an *outcomeError.
func (c *Client) post(ctx context.Context, path string, body []byte) (*answer, error) {
	endpoint := c.base + "/" + c.version + path
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, &outcomeError{Outcome{Status: ConfigError, Code: CodeBadResponse, Message: "build request: " + err.Error()}}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if c.login != "" {
			req.Header.Set("login-customer-id", c.login)
		}
		if c.developerToken != "" {
			req.Header.Set("developer-token", c.developerToken)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, transportError(path, err, c.now())
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, transportError(path, err, c.now())
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			c.tokens.invalidate(tok)
			continue
		}
		return &answer{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
}

func transportError(path string, err error, now time.Time) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is ours and known; keep the cause
	}
	return &outcomeError{Outcome{Status: RetryLater, Code: CodeTransport, Message: fmt.Sprintf("POST %s: %v", path, err), RetryAt: now.Add(defaultRetryDelay)}}
}
