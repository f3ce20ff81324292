package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func TestAuditingDefaults(t *testing.T) {
	var cfg Jobs
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(nil), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Auditing.Window != 24*time.Hour || cfg.Auditing.ThresholdPercent != 1 {
		t.Errorf("defaults %+v", cfg.Auditing)
	}
}

// The audit's limits at and past their edges, for the function and for the
// command line and dev, which read the same variables.
func TestAuditingLimits(t *testing.T) {
	fn := map[string]string{"DATABASE_URL": "postgres://db/x", "TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_CHAT_ID": "1"}
	for _, c := range []struct {
		name, value string
		ok          bool
	}{
		{"AUDIT_WINDOW", "1s", true},
		{"AUDIT_WINDOW", "744h", true}, // 31 days
		{"AUDIT_WINDOW", "744h1s", false},
		{"AUDIT_WINDOW", "0s", false},
		{"AUDIT_WINDOW", "-24h", false},
		{"AUDIT_WINDOW", "daily", false},
		{"AUDIT_THRESHOLD_PERCENT", "0", true},
		{"AUDIT_THRESHOLD_PERCENT", "100", true},
		{"AUDIT_THRESHOLD_PERCENT", "100.01", false},
		{"AUDIT_THRESHOLD_PERCENT", "-0.01", false},
		{"AUDIT_THRESHOLD_PERCENT", "NaN", false},
		{"AUDIT_THRESHOLD_PERCENT", "one", false},
	} {
		for _, cfg := range []any{&Audit{}, &Jobs{}, &Dev{}} {
			env := map[string]string{c.name: c.value}
			if _, ok := cfg.(*Audit); ok {
				for k, v := range fn {
					env[k] = v
				}
			}
			err := LoadFrom(context.Background(), envconfig.MapLookuper(env), cfg)
			if c.ok != (err == nil) || (err != nil && (!strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n"))) {
				t.Errorf("%T %s=%s: error %v, want ok=%v (else one line naming %s)", cfg, c.name, c.value, err, c.ok, c.name)
			}
		}
	}
}

func TestTheAuditFunctionNeedsTelegram(t *testing.T) {
	err := LoadFrom(context.Background(), envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://db/x"}), &Audit{})
	if err == nil || !strings.Contains(err.Error(), "TELEGRAM_BOT_TOKEN") {
		t.Fatalf("error %v, want one naming TELEGRAM_BOT_TOKEN", err)
	}
}
