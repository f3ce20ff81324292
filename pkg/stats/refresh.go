package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Triggers name who ran a refresh (analytics_refreshes.trigger).
const (
	TriggerPgCron     = "pg_cron"
	TriggerCLI        = "cli"
	TriggerDev        = "dev"
	TriggerWatchtower = "watchtower"
)

// Refresh is one row of analytics_refreshes.
type Refresh struct {
	ID         int64     `json:"id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Ms         float64   `json:"ms"`
	Rows       int64     `json:"rows"`
	Trigger    string    `json:"trigger"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
}

const refreshColumns = `id, started_at, finished_at, ms, coalesce(rows, 0), trigger, ok, coalesce(error, '')`

func scanRefresh(row pgx.Row) (Refresh, error) {
	var r Refresh
	err := row.Scan(&r.ID, &r.StartedAt, &r.FinishedAt, &r.Ms, &r.Rows, &r.Trigger, &r.OK, &r.Error)
	return r, err
}

// RefreshError is a refresh that ran and failed; its record is stored.
type RefreshError struct{ Refresh Refresh }

func (e *RefreshError) Error() string {
	return fmt.Sprintf("refresh of mv_daily_analytics_summary failed after %.0f ms: %s", e.Refresh.Ms, e.Refresh.Error)
}

// One statement, so that it works through a transaction-mode pooler and in
// every pgx exec mode.
const refreshQuery = `SELECT ` + refreshColumns + ` FROM refresh_daily_analytics($1)`

// RunRefresh refreshes the view once (CONCURRENTLY: readers are not blocked)
// and returns its record. A refresh that fails is recorded and returned
// with a *RefreshError.
func RunRefresh(ctx context.Context, db Querier, trigger string) (Refresh, error) {
	r, err := scanRefresh(db.QueryRow(ctx, refreshQuery, trigger))
	if err != nil {
		return Refresh{}, fmt.Errorf("refresh daily analytics: %w", err)
	}
	if !r.OK {
		return r, &RefreshError{Refresh: r}
	}
	return r, nil
}

// RefreshJob is the scheduled job of `opsmantik run refresh-analytics` and
// of the local stack's hourly refresh: one refresh, one log line.
func RefreshJob(db Querier, trigger string, logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		r, err := RunRefresh(ctx, db, trigger)
		if err != nil {
			logger.ErrorContext(ctx, "analytics refresh", "trigger", trigger, "ok", false, "ms", r.Ms, "err", err.Error())
			return err
		}
		logger.InfoContext(ctx, "analytics refresh", "trigger", trigger, "ok", true, "rows", r.Rows, "ms", r.Ms)
		return nil
	}
}

// The last successful refresh, and whether any was ever attempted.
const lastRefreshQuery = `
SELECT EXISTS (SELECT 1 FROM analytics_refreshes),
       r.started_at, r.trigger
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT started_at, trigger FROM analytics_refreshes WHERE ok ORDER BY started_at DESC LIMIT 1
) r ON true`

// Freshness is what RefreshIfStale found and did.
type Freshness struct {
	// LastOK is the last successful refresh before this call (nil: none).
	LastOK        *time.Time
	LastOKTrigger string
	// Age is now - LastOK (0 without one).
	Age time.Duration
	// Attempted: some refresh was ever tried (successful or not).
	Attempted bool
	// Stale: there was a refresh (or an attempt) and the last success is
	// older than the maximum age, or there is none.
	Stale bool
	// Refreshed is the refresh this call ran, if it ran one.
	Refreshed *Refresh
}

// RefreshIfStale refreshes the view when its last successful refresh is
// older than maxAge (the watchtower's WT004). A view that was never even
// tried is refreshed too, but is not stale: nothing was due to have
// refreshed it yet (a new installation). The error is non-nil when the
// refresh it needed failed.
func RefreshIfStale(ctx context.Context, db Querier, now time.Time, maxAge time.Duration, trigger string) (Freshness, error) {
	var f Freshness
	var trig *string
	if err := db.QueryRow(ctx, lastRefreshQuery).Scan(&f.Attempted, &f.LastOK, &trig); err != nil {
		return f, fmt.Errorf("read the last analytics refresh: %w", err)
	}
	if trig != nil {
		f.LastOKTrigger = *trig
	}
	if f.LastOK != nil {
		f.Age = now.Sub(*f.LastOK)
	}
	f.Stale = f.Attempted && (f.LastOK == nil || f.Age > maxAge)
	if f.LastOK != nil && !f.Stale {
		return f, nil
	}
	r, err := RunRefresh(ctx, db, trigger)
	if err != nil {
		var re *RefreshError
		if errors.As(err, &re) {
			f.Refreshed = &r
		}
		return f, err
	}
	f.Refreshed = &r
	return f, nil
}
