package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Stats configures functions/stats, the dashboard's statistics endpoint.
type Stats struct {
	Database  Database
	Log       Log
	Dashboard Dashboard
}

// Dashboard says where the page's install instructions point: the tracker
// script and the sync function's URL (unset: the stats URL's own
// /ux-core.js and /api/sync, which is right only behind one domain).
type Dashboard struct {
	TrackerURL string `env:"DASHBOARD_TRACKER_URL"`
	SyncURL    string `env:"DASHBOARD_SYNC_URL"`
}

// Validate accepts unset values or http(s) URLs.
func (d Dashboard) Validate() error {
	for _, v := range []struct{ name, value string }{{"DASHBOARD_TRACKER_URL", d.TrackerURL}, {"DASHBOARD_SYNC_URL", d.SyncURL}} {
		if v.value == "" {
			continue
		}
		if u, err := url.Parse(v.value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: must be an http(s) URL, got %q", v.name, v.value)
		}
	}
	return nil
}

// Analytics configures how `opsmantik migrate` schedules the hourly refresh
// of the daily analytics view with pg_cron.
type Analytics struct {
	// RefreshSchedule is a pg_cron schedule (five cron fields, minute
	// granularity; pg_cron 1.5+ also takes "N seconds").
	RefreshSchedule string `env:"ANALYTICS_REFRESH_SCHEDULE, default=5 * * * *"`
}

// Validate checks that a schedule is given; pg_cron itself judges its syntax
// when migrate schedules it.
func (a Analytics) Validate() error {
	if strings.TrimSpace(a.RefreshSchedule) == "" {
		return errors.New("ANALYTICS_REFRESH_SCHEDULE: must be a pg_cron schedule such as '5 * * * *'")
	}
	return nil
}

// Validate checks the analytics part of the command line's configuration.
func (c *CLI) Validate() error { return c.Analytics.Validate() }
