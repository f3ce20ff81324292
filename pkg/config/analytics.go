package config

import (
	"errors"
	"strings"
)

// Stats configures functions/stats, the dashboard's statistics endpoint.
type Stats struct {
	Database Database
	Log      Log
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
