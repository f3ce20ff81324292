package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func TestAnalyticsDefaults(t *testing.T) {
	var cli CLI
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(nil), &cli); err != nil {
		t.Fatal(err)
	}
	if cli.Analytics.RefreshSchedule != "5 * * * *" {
		t.Errorf("ANALYTICS_REFRESH_SCHEDULE default %q", cli.Analytics.RefreshSchedule)
	}
	var jobs Jobs
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(nil), &jobs); err != nil {
		t.Fatal(err)
	}
	if jobs.Alerting.AnalyticsMaxAge != 90*time.Minute {
		t.Errorf("ANALYTICS_MAX_AGE default %s", jobs.Alerting.AnalyticsMaxAge)
	}
	var st Stats
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://db/x", "DB_MAX_CONNS": "2"}), &st); err != nil || st.Database.MaxConns != 2 {
		t.Errorf("stats: %+v, %v", st, err)
	}
}

func TestAnalyticsErrorsNameTheVariable(t *testing.T) {
	for _, c := range []struct {
		cfg  any
		env  map[string]string
		name string
	}{
		{&CLI{}, map[string]string{"ANALYTICS_REFRESH_SCHEDULE": "  "}, "ANALYTICS_REFRESH_SCHEDULE"},
		{&Jobs{}, map[string]string{"ANALYTICS_MAX_AGE": "0s"}, "ANALYTICS_MAX_AGE"},
		{&Watchtower{}, map[string]string{"DATABASE_URL": "postgres://db/x", "TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_CHAT_ID": "1", "ANALYTICS_MAX_AGE": "-5m"}, "ANALYTICS_MAX_AGE"},
		{&Dev{}, map[string]string{"ANALYTICS_MAX_AGE": "soon"}, "ANALYTICS_MAX_AGE"},
	} {
		err := LoadFrom(context.Background(), envconfig.MapLookuper(c.env), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%T %v: error %v, want one line naming %s", c.cfg, c.env, err, c.name)
		}
	}
}
