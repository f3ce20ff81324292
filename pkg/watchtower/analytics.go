package watchtower

import (
	"context"
	"fmt"
	"time"

	"github.com/opsmantik/opsmantik/pkg/stats"
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// AnalyticsStale (WT004) keeps the daily analytics view fresh when its
// schedule (pg_cron) does not: when the last successful refresh is older
// than maxAge, the check refreshes the view itself and fails with a warning
// that says so. If that refresh fails too, the check's query failed: the
// watchtower raises its alarm (WT009 CHECK_FAILED, naming WT004 and the
// database's error). A view never refreshed at all (a new installation) is refreshed
// quietly: nothing was due to refresh it yet.
func AnalyticsStale(maxAge time.Duration) Check {
	return Check{Code: "WT004", Name: "ANALYTICS_STALE", Level: telegram.Warning,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			f, err := stats.RefreshIfStale(ctx, db, now, maxAge, stats.TriggerWatchtower)
			figures := map[string]any{"max_age": humanDuration(maxAge)}
			last := "never"
			if f.LastOK != nil {
				last = fmt.Sprintf("%s ago (%s, by %s)", humanDuration(f.Age), formatTime(*f.LastOK), f.LastOKTrigger)
				figures["last_refresh"] = formatTime(*f.LastOK)
				figures["last_refresh_by"] = f.LastOKTrigger
				figures["age"] = humanDuration(f.Age)
			}
			if err != nil {
				return Outcome{}, fmt.Errorf("the view's last successful refresh was %s, over ANALYTICS_MAX_AGE %s, and the watchtower's own refresh failed: %w",
					last, humanDuration(maxAge), err)
			}
			if f.Refreshed != nil {
				figures["refreshed_rows"] = f.Refreshed.Rows
				figures["refresh_ms"] = int64(f.Refreshed.Ms)
			}
			switch {
			case f.Stale:
				return Outcome{Failing: true, Figures: figures, Summary: fmt.Sprintf(
					"The daily analytics view was last refreshed %s, over ANALYTICS_MAX_AGE %s. The watchtower refreshed it itself (%d rows in %.0f ms); "+
						"check the pg_cron job %s (cron.job_run_details) or run `opsmantik migrate` to schedule it.",
					last, humanDuration(maxAge), f.Refreshed.Rows, f.Refreshed.Ms, stats.CronJobName)}, nil
			case f.Refreshed != nil:
				return Outcome{Figures: figures, Summary: fmt.Sprintf(
					"The daily analytics view had never been refreshed; the watchtower refreshed it (%d rows).", f.Refreshed.Rows)}, nil
			default:
				return Outcome{Figures: figures, Summary: fmt.Sprintf("The daily analytics view was refreshed %s.", last)}, nil
			}
		}}
}
