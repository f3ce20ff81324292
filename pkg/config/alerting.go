package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Secret is a configuration value that must never be printed: fmt, %#v and
// slog all show it as "[redacted]" (or "" when unset).
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps JSON (and slog's JSON of a whole struct) from printing the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Telegram is the Bot API client's configuration.
type Telegram struct {
	BotToken Secret `env:"TELEGRAM_BOT_TOKEN"`
	// ChatID is a numeric chat id (e.g. -1001234567890) or a @channelusername.
	ChatID string `env:"TELEGRAM_CHAT_ID"`
	// ThreadID posts into one topic of a forum group; 0 posts to the chat.
	ThreadID int64  `env:"TELEGRAM_THREAD_ID, default=0"`
	APIURL   string `env:"TELEGRAM_API_URL, default=https://api.telegram.org"`
}

// Configured reports whether a bot token is set. Without one, the local stack
// prints messages to its log instead.
func (t Telegram) Configured() bool { return t.BotToken != "" }

// Validate checks the values that are set; it does not require a token.
func (t Telegram) Validate() error {
	if t.Configured() && strings.TrimSpace(t.ChatID) == "" {
		return errors.New("TELEGRAM_CHAT_ID: required when TELEGRAM_BOT_TOKEN is set")
	}
	if t.ThreadID < 0 {
		return errors.New("TELEGRAM_THREAD_ID: must not be negative")
	}
	u, err := url.Parse(t.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("TELEGRAM_API_URL: must be an http(s) URL, got %q", t.APIURL)
	}
	return nil
}

// Require is Validate for deployed functions, where printing to a log is no
// substitute for the chat: the token and the chat id must be set.
func (t Telegram) Require() error {
	if !t.Configured() {
		return errors.New("TELEGRAM_BOT_TOKEN: missing required value")
	}
	return t.Validate()
}

// Alerting holds the watchtower's thresholds and windows and how often a
// failing check is repeated.
type Alerting struct {
	RepeatEvery time.Duration `env:"ALERT_REPEAT_EVERY, default=6h"`
	// Interval is how often the watchtower runs: the schedule of
	// watchtower-cron in serverless.yml (keep the two equal) and of `opsmantik
	// dev`. No successful run for more than two intervals is an outage that
	// the next successful run resolves (WT000).
	Interval time.Duration `env:"WATCHTOWER_INTERVAL, default=15m"`
	// WT001: no non-bot session started within this window (the whole
	// installation, and per site when its history expects traffic).
	TrafficWindow time.Duration `env:"WATCHTOWER_TRAFFIC_WINDOW, default=1h"`
	// WT002: no non-bot session with a Google click id started within this
	// window (the whole installation, and per site as for WT001).
	ClickIDWindow time.Duration `env:"WATCHTOWER_CLICK_ID_WINDOW, default=3h"`
	// SiteMinExpected: a quiet site is judged (WT001 and WT002 per site) only
	// when the same window of the same local hour-of-week had at least this
	// many sessions on average over the last four weeks.
	SiteMinExpected float64 `env:"WATCHTOWER_SITE_MIN_EXPECTED, default=5"`
	// WT003: ingest error rate over this window above this percentage, once
	// at least ErrorRateMinSample attempts were seen.
	ErrorRateWindow    time.Duration `env:"WATCHTOWER_ERROR_RATE_WINDOW, default=1h"`
	ErrorRatePercent   float64       `env:"WATCHTOWER_ERROR_RATE_PERCENT, default=5"`
	ErrorRateMinSample int64         `env:"WATCHTOWER_ERROR_RATE_MIN_SAMPLE, default=20"`
	// WT004: the daily analytics view's last successful refresh may be this
	// old before the watchtower refreshes it itself and warns.
	AnalyticsMaxAge time.Duration `env:"ANALYTICS_MAX_AGE, default=90m"`
	// WT005: conversions unfinished for longer than this (pkg/conversions).
	ConversionBacklogAfter time.Duration `env:"CONVERSION_BACKLOG_AFTER, default=1h"`
}

// Validate checks that windows are positive and the rate is a percentage.
func (a Alerting) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ALERT_REPEAT_EVERY", a.RepeatEvery},
		{"WATCHTOWER_INTERVAL", a.Interval},
		{"WATCHTOWER_TRAFFIC_WINDOW", a.TrafficWindow},
		{"WATCHTOWER_CLICK_ID_WINDOW", a.ClickIDWindow},
		{"WATCHTOWER_ERROR_RATE_WINDOW", a.ErrorRateWindow},
		{"ANALYTICS_MAX_AGE", a.AnalyticsMaxAge},
		{"CONVERSION_BACKLOG_AFTER", a.ConversionBacklogAfter},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s: must be a positive duration such as 1h, got %s", d.name, d.v)
		}
	}
	if a.Interval < time.Minute {
		return fmt.Errorf("WATCHTOWER_INTERVAL: must be at least 1m (the schedule's smallest step), got %s", a.Interval)
	}
	if !(a.SiteMinExpected > 0) || math.IsInf(a.SiteMinExpected, 1) {
		return fmt.Errorf("WATCHTOWER_SITE_MIN_EXPECTED: must be a positive number of sessions, got %v", a.SiteMinExpected)
	}
	if a.ErrorRatePercent < 0 || a.ErrorRatePercent > 100 {
		return fmt.Errorf("WATCHTOWER_ERROR_RATE_PERCENT: must be between 0 and 100, got %v", a.ErrorRatePercent)
	}
	if a.ErrorRateMinSample < 1 {
		return fmt.Errorf("WATCHTOWER_ERROR_RATE_MIN_SAMPLE: must be at least 1, got %d", a.ErrorRateMinSample)
	}
	return nil
}

// Watchtower configures functions/watchtower-cron.
type Watchtower struct {
	Database Database
	Log      Log
	Telegram Telegram
	Alerting Alerting
	// The conversion sweep runs before the checks (pkg/watchtower/conversions.go).
	Publish QStashPublish
	Sweep   ConversionSweep
}

func (c *Watchtower) Validate() error {
	return errors.Join(c.Telegram.Require(), c.Alerting.Validate())
}

// TestNotification configures functions/test-notification. Without
// CRON_SECRET the endpoint stays closed (503) rather than failing to start.
type TestNotification struct {
	Log        Log
	Telegram   Telegram
	CronSecret Secret `env:"CRON_SECRET"`
}

func (c *TestNotification) Validate() error {
	return errors.Join(c.Telegram.Require(), c.CronSecret.validateCronSecret())
}

// MinCronSecretLength is the shortest CRON_SECRET accepted: the endpoint is
// public, so the secret must not be guessable.
const MinCronSecretLength = 16

// validateCronSecret refuses a set but short CRON_SECRET (unset keeps the
// endpoint closed). The message gives the length, never the value.
func (s Secret) validateCronSecret() error {
	if n := utf8.RuneCountInString(string(s)); s != "" && n < MinCronSecretLength {
		return fmt.Errorf("CRON_SECRET: must be at least %d characters (e.g. openssl rand -hex 32), got %d", MinCronSecretLength, n)
	}
	return nil
}

// Jobs configures `opsmantik run <job>`: the same variables as the
// watchtower function, but without a Telegram token alerts are printed to
// the log instead of stopping the start.
type Jobs struct {
	Database LocalDatabase
	Log      Log
	Telegram Telegram
	Alerting Alerting
	Auditing Auditing
	Publish  QStashPublish
	Sweep    ConversionSweep
}

func (c *Jobs) Validate() error {
	return errors.Join(c.Telegram.Validate(), c.Alerting.Validate())
}

// Cron configures the scheduler inside `opsmantik dev`.
type Cron struct {
	// Enabled runs the scheduled jobs (the watchtower, …) on their intervals.
	Enabled bool `env:"OPSMANTIK_CRON, default=true"`
}

// Validate checks the alerting part of `opsmantik dev`'s configuration.
func (c *Dev) Validate() error {
	err := errors.Join(c.Telegram.Validate(), c.Alerting.Validate(), c.CronSecret.validateCronSecret())
	if c.Publish.Configured() {
		// A real QStash signs with its own keys: the local worker needs them.
		err = errors.Join(err, c.Delivery.Require())
	}
	return err
}
