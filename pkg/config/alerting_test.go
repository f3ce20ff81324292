package config

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func TestAlertingDefaults(t *testing.T) {
	var cfg Jobs
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(nil), &cfg); err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerting
	if a.RepeatEvery != 6*time.Hour || a.TrafficWindow != time.Hour || a.ClickIDWindow != 3*time.Hour ||
		a.ErrorRateWindow != time.Hour || a.ErrorRatePercent != 5 || a.ErrorRateMinSample != 20 ||
		a.Interval != 15*time.Minute || a.SiteMinExpected != 5 {
		t.Errorf("defaults %+v", a)
	}
	if cfg.Telegram.APIURL != "https://api.telegram.org" || cfg.Telegram.Configured() {
		t.Errorf("telegram defaults %+v", cfg.Telegram)
	}
}

func TestAlertingConfigurationErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		cfg  any
		env  map[string]string
		name string
	}{
		{&Jobs{}, map[string]string{"ALERT_REPEAT_EVERY": "0s"}, "ALERT_REPEAT_EVERY"},
		{&Jobs{}, map[string]string{"WATCHTOWER_ERROR_RATE_PERCENT": "150"}, "WATCHTOWER_ERROR_RATE_PERCENT"},
		{&Jobs{}, map[string]string{"WATCHTOWER_ERROR_RATE_MIN_SAMPLE": "0"}, "WATCHTOWER_ERROR_RATE_MIN_SAMPLE"},
		{&Jobs{}, map[string]string{"WATCHTOWER_INTERVAL": "59s"}, "WATCHTOWER_INTERVAL"},
		{&Jobs{}, map[string]string{"WATCHTOWER_INTERVAL": "-15m"}, "WATCHTOWER_INTERVAL"},
		{&Jobs{}, map[string]string{"WATCHTOWER_INTERVAL": "often"}, "WATCHTOWER_INTERVAL"},
		{&Jobs{}, map[string]string{"WATCHTOWER_SITE_MIN_EXPECTED": "0"}, "WATCHTOWER_SITE_MIN_EXPECTED"},
		{&Jobs{}, map[string]string{"WATCHTOWER_SITE_MIN_EXPECTED": "NaN"}, "WATCHTOWER_SITE_MIN_EXPECTED"},
		{&Jobs{}, map[string]string{"WATCHTOWER_SITE_MIN_EXPECTED": "+Inf"}, "WATCHTOWER_SITE_MIN_EXPECTED"},
		{&TestNotification{}, map[string]string{"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_CHAT_ID": "1", "CRON_SECRET": "fifteen-chars15"}, "CRON_SECRET"},
		{&Dev{}, map[string]string{"CRON_SECRET": "dev-secret"}, "CRON_SECRET"},
		{&Jobs{}, map[string]string{"TELEGRAM_BOT_TOKEN": "1:x"}, "TELEGRAM_CHAT_ID"},
		{&Jobs{}, map[string]string{"TELEGRAM_API_URL": "api.telegram.org"}, "TELEGRAM_API_URL"},
		{&Dev{}, map[string]string{"TELEGRAM_THREAD_ID": "-1"}, "TELEGRAM_THREAD_ID"},
		{&Watchtower{}, map[string]string{"DATABASE_URL": "postgres://db/x"}, "TELEGRAM_BOT_TOKEN"},
		{&TestNotification{}, map[string]string{"TELEGRAM_BOT_TOKEN": "1:x"}, "TELEGRAM_CHAT_ID"},
	}
	for _, c := range cases {
		err := LoadFrom(context.Background(), envconfig.MapLookuper(c.env), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%T %v: error %v, want one line naming %s", c.cfg, c.env, err, c.name)
		}
	}
}

// The edge of CRON_SECRET's length: 15 characters stop the start (with a
// message that gives the length, not the value), 16 start, unset keeps the
// endpoint closed.
func TestCronSecretLength(t *testing.T) {
	base := map[string]string{"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_CHAT_ID": "1"}
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{"", true},
		{"abcdefghijklmno", false}, // 15
		{"abcdefghijklmnop", true}, // 16
		{"ççççççççççççççç", false}, // 15 characters, 30 bytes
		{"çççççççççççççççç", true}, // 16 characters
		{"0123456789abcdef0123456789abcdef", true},
	} {
		env := map[string]string{"CRON_SECRET": tc.secret}
		for k, v := range base {
			env[k] = v
		}
		for _, cfg := range []any{&TestNotification{}, &Dev{}} {
			err := LoadFrom(context.Background(), envconfig.MapLookuper(env), cfg)
			if (err == nil) != tc.ok {
				t.Errorf("%T with a %d-character CRON_SECRET: error %v, want ok=%v", cfg, len([]rune(tc.secret)), err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "CRON_SECRET: must be at least 16 characters") || strings.Contains(err.Error(), tc.secret)) {
				t.Errorf("error %q: want one naming CRON_SECRET's rule and not its value", err)
			}
		}
	}
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	cfg := TestNotification{CronSecret: "cron-s3cret", Telegram: Telegram{BotToken: "1:tok-s3cret", ChatID: "1"}}
	j, _ := json.Marshal(cfg)
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "cfg", cfg, "secret", cfg.CronSecret)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "cfg", cfg, "secret", cfg.CronSecret)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.CronSecret), string(j), logs.String()} {
		if strings.Contains(out, "s3cret") {
			t.Errorf("a secret is printed: %s", out)
		}
	}
}
