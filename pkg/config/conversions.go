package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MaxQStashRetries bounds QSTASH_RETRIES: QStash refuses more than the plan
// allows (5 on the pay-as-you-go plan), and more than 20 would retry for weeks.
const MaxQStashRetries = 20

// QStashPublish is what hands conversions to QStash: functions/sync after the
// ingest transaction, and the conversion sweep (watchtower-cron, `opsmantik
// run`, `opsmantik dev`). Without QSTASH_TOKEN nothing is published: new
// conversions stay pending and WT005 reports them.
type QStashPublish struct {
	// URL is QStash's base URL. The Go SDK reads QSTASH_URL from the
	// environment itself too, so the two always agree.
	URL   string `env:"QSTASH_URL, default=https://qstash.upstash.io"`
	Token Secret `env:"QSTASH_TOKEN"`
	// Retries is Upstash-Retries, set on every message.
	Retries int `env:"QSTASH_RETRIES, default=5"`
	// WorkerURL is the public URL of functions/sync-google-ads: the messages'
	// destination.
	WorkerURL string `env:"SYNC_GOOGLE_ADS_URL"`
}

// Configured reports whether a token is set.
func (q QStashPublish) Configured() bool { return q.Token != "" }

// Validate checks the values that are set; with a token the worker's URL is required.
func (q QStashPublish) Validate() error {
	if err := checkRetries(q.Retries); err != nil {
		return err
	}
	if err := checkHTTPURL("QSTASH_URL", q.URL); err != nil {
		return err
	}
	if q.WorkerURL != "" {
		if err := checkHTTPURL("SYNC_GOOGLE_ADS_URL", q.WorkerURL); err != nil {
			return err
		}
	}
	if q.Configured() && q.WorkerURL == "" {
		return errors.New("SYNC_GOOGLE_ADS_URL: required when QSTASH_TOKEN is set (the Function URL of sync-google-ads)")
	}
	return nil
}

// QStashDelivery is what functions/sync-google-ads checks deliveries with:
// the signing keys and the URL the signatures name, and the retries that
// tell it a delivery is QStash's last.
type QStashDelivery struct {
	CurrentSigningKey Secret `env:"QSTASH_CURRENT_SIGNING_KEY"`
	NextSigningKey    Secret `env:"QSTASH_NEXT_SIGNING_KEY"`
	Retries           int    `env:"QSTASH_RETRIES, default=5"`
	WorkerURL         string `env:"SYNC_GOOGLE_ADS_URL"`
}

// Validate checks the values that are set.
func (q QStashDelivery) Validate() error {
	if err := checkRetries(q.Retries); err != nil {
		return err
	}
	if q.WorkerURL != "" {
		return checkHTTPURL("SYNC_GOOGLE_ADS_URL", q.WorkerURL)
	}
	return nil
}

// Require is Validate for the deployed worker: without the keys and its URL
// it could verify no delivery.
func (q QStashDelivery) Require() error {
	switch {
	case q.CurrentSigningKey == "":
		return errors.New("QSTASH_CURRENT_SIGNING_KEY: missing required value")
	case q.NextSigningKey == "":
		return errors.New("QSTASH_NEXT_SIGNING_KEY: missing required value")
	case q.WorkerURL == "":
		return errors.New("SYNC_GOOGLE_ADS_URL: missing required value (this function's own Function URL)")
	}
	return q.Validate()
}

func checkRetries(n int) error {
	if n < 0 || n > MaxQStashRetries {
		return fmt.Errorf("QSTASH_RETRIES: must be between 0 and %d, got %d", MaxQStashRetries, n)
	}
	return nil
}

func checkHTTPURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: must be an http(s) URL, got %q", name, raw)
	}
	return nil
}

// GoogleAds is the Google Ads API client's configuration (pkg/googleads).
// Without the OAuth client and refresh token the worker runs dry: it logs
// the request it would send and marks the conversion uploaded, dry_run.
type GoogleAds struct {
	APIURL        string `env:"GOOGLE_ADS_API_URL, default=https://googleads.googleapis.com"`
	APIVersion    string `env:"GOOGLE_ADS_API_VERSION, default=v26"`
	OAuthTokenURL string `env:"GOOGLE_OAUTH_TOKEN_URL, default=https://oauth2.googleapis.com/token"`
	ClientID      string `env:"GOOGLE_ADS_CLIENT_ID"`
	ClientSecret  Secret `env:"GOOGLE_ADS_CLIENT_SECRET"`
	RefreshToken  Secret `env:"GOOGLE_ADS_REFRESH_TOKEN"`
	// LoginCustomerID is the manager account, when access goes through one.
	LoginCustomerID string `env:"GOOGLE_ADS_LOGIN_CUSTOMER_ID"`
	// DeveloperToken is sent only when set (Google no longer requires it).
	DeveloperToken Secret `env:"GOOGLE_ADS_DEVELOPER_TOKEN"`
}

// Configured reports whether the OAuth credentials are set.
func (g GoogleAds) Configured() bool {
	return g.ClientID != "" || g.ClientSecret != "" || g.RefreshToken != ""
}

// Validate checks the URLs and that the credentials come all or none.
func (g GoogleAds) Validate() error {
	if err := checkHTTPURL("GOOGLE_ADS_API_URL", g.APIURL); err != nil {
		return err
	}
	if err := checkHTTPURL("GOOGLE_OAUTH_TOKEN_URL", g.OAuthTokenURL); err != nil {
		return err
	}
	v := g.APIVersion
	if len(v) < 2 || v[0] != 'v' || strings.Trim(v[1:], "0123456789") != "" {
		return fmt.Errorf("GOOGLE_ADS_API_VERSION: must be like v26, got %q", v)
	}
	if g.Configured() {
		for _, c := range []struct {
			name string
			set  bool
		}{
			{"GOOGLE_ADS_CLIENT_ID", g.ClientID != ""},
			{"GOOGLE_ADS_CLIENT_SECRET", g.ClientSecret != ""},
			{"GOOGLE_ADS_REFRESH_TOKEN", g.RefreshToken != ""},
		} {
			if !c.set {
				return fmt.Errorf("%s: required with the other Google Ads credentials (set all three, or none to run dry)", c.name)
			}
		}
	}
	if id := strings.ReplaceAll(g.LoginCustomerID, "-", ""); id != "" && (len(id) != 10 || strings.Trim(id, "0123456789") != "") {
		return fmt.Errorf("GOOGLE_ADS_LOGIN_CUSTOMER_ID: want 10 digits (dashes allowed), got %q", g.LoginCustomerID)
	}
	return nil
}

// GA4 is the Measurement Protocol's base URL; each site has its own
// measurement id and API secret (opsmantik site set).
type GA4 struct {
	APIURL string `env:"GA4_API_URL, default=https://www.google-analytics.com"`
}

// Validate checks the URL.
func (g GA4) Validate() error { return checkHTTPURL("GA4_API_URL", g.APIURL) }

// ConversionSweep configures the sweep that republishes conversions whose
// publish failed (pkg/conversions).
type ConversionSweep struct {
	RepublishAfter time.Duration `env:"CONVERSION_REPUBLISH_AFTER, default=5m"`
}

// Validate checks that the delay is positive.
func (s ConversionSweep) Validate() error {
	if s.RepublishAfter <= 0 {
		return fmt.Errorf("CONVERSION_REPUBLISH_AFTER: must be a positive duration such as 5m, got %s", s.RepublishAfter)
	}
	return nil
}

// SyncGoogleAds configures functions/sync-google-ads, the worker QStash
// delivers conversions to.
type SyncGoogleAds struct {
	Database  Database
	Log       Log
	Delivery  QStashDelivery
	GoogleAds GoogleAds
	GA4       GA4
}

// Validate requires what verifying a delivery needs.
func (c *SyncGoogleAds) Validate() error { return c.Delivery.Require() }
