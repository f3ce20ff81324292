package watchtower

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// Querier is what a check reads with (a pool, a connection, a transaction).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Check is one health check with a stable code ("WT001") and name
// ("TRAFFIC_LOSS"). Measure reads the figures as of now and says whether the
// check fails; an error means the database could not be queried.
type Check struct {
	Code    string
	Name    string
	Level   telegram.Level
	Measure func(ctx context.Context, db Querier, now time.Time) (Outcome, error)
}

// Outcome is what one check found.
type Outcome struct {
	Failing bool
	// Skipped means the check was not judged: there was too little data to
	// say either way (WT003 below its minimum sample). A skipped check
	// neither fires, repeats nor resolves: its alert state is left as it
	// is, and the run reports it as "skipped" with its figures. Failing is
	// false when Skipped is true.
	Skipped bool
	// Summary is one sentence for the message ("No non-bot session ...").
	Summary string
	// Figures are the numbers behind the outcome, for the message and the log.
	Figures map[string]any
}

// Checks are the registered checks with their configured thresholds. To add
// a check, write a function that returns a Check and add one line here.
func Checks(cfg config.Alerting) []Check {
	return []Check{
		TrafficLoss(cfg.TrafficWindow),
		ClickIDLoss(cfg.ClickIDWindow),
		IngestErrorRate(cfg.ErrorRateWindow, cfg.ErrorRatePercent, cfg.ErrorRateMinSample),
		ConversionBacklog(cfg.ConversionBacklogAfter),
	}
}

// DatabaseUnreachable is WT000. It has no Measure: the watchtower raises it
// itself, without the database, when the probe or a check's query fails.
func DatabaseUnreachable() Check {
	return Check{Code: "WT000", Name: "DATABASE_UNREACHABLE", Level: telegram.Alarm}
}

// Uses sessions_live_last_seen_idx.
const activeSessionsQuery = `
SELECT count(*) FROM sessions
WHERE NOT is_bot AND last_seen_at >= $1`

// TrafficLoss (WT001) fails when no non-bot session was active within window.
func TrafficLoss(window time.Duration) Check {
	return Check{Code: "WT001", Name: "TRAFFIC_LOSS", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			var n int64
			if err := db.QueryRow(ctx, activeSessionsQuery, now.Add(-window)).Scan(&n); err != nil {
				return Outcome{}, fmt.Errorf("count active sessions: %w", err)
			}
			return Outcome{
				Failing: n == 0,
				Summary: fmt.Sprintf("%s non-bot sessions were active in the last %s.", count(n), humanDuration(window)),
				Figures: map[string]any{"active_sessions": n, "window": humanDuration(window)},
			}, nil
		}}
}

// Uses sessions_click_started_idx (same predicate).
const clickIDSessionsQuery = `
SELECT count(*) FROM sessions
WHERE NOT is_bot AND (gclid IS NOT NULL OR wbraid IS NOT NULL OR gbraid IS NOT NULL)
  AND started_at >= $1`

// ClickIDLoss (WT002) fails when no non-bot session with a Google click id
// (gclid, wbraid or gbraid) started within window.
func ClickIDLoss(window time.Duration) Check {
	return Check{Code: "WT002", Name: "GCLID_LOSS", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			var n int64
			if err := db.QueryRow(ctx, clickIDSessionsQuery, now.Add(-window)).Scan(&n); err != nil {
				return Outcome{}, fmt.Errorf("count sessions with a click id: %w", err)
			}
			return Outcome{
				Failing: n == 0,
				Summary: fmt.Sprintf("%s non-bot sessions with a Google click id (gclid, wbraid, gbraid) started in the last %s.", count(n), humanDuration(window)),
				Figures: map[string]any{"click_id_sessions": n, "window": humanDuration(window)},
			}, nil
		}}
}

// ingest_counters is sharded per minute; sum over shards and buckets.
const ingestCountersQuery = `
SELECT coalesce(sum(requests), 0)::bigint,
       coalesce(sum(server_failures), 0)::bigint,
       coalesce(sum(client_failures), 0)::bigint
FROM ingest_counters
WHERE bucket >= $1`

// IngestErrorRate (WT003) fails when, over window, (server failures +
// client-reported failures) ÷ (requests + client-reported failures) is above
// maxPercent. Below minSample attempts it is not judged (Outcome.Skipped): a
// quiet hour neither fires it nor resolves it.
func IngestErrorRate(window time.Duration, maxPercent float64, minSample int64) Check {
	return Check{Code: "WT003", Name: "INGEST_ERROR_RATE", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			var requests, server, client int64
			if err := db.QueryRow(ctx, ingestCountersQuery, now.Add(-window)).Scan(&requests, &server, &client); err != nil {
				return Outcome{}, fmt.Errorf("sum ingest counters: %w", err)
			}
			attempts, failures := requests+client, server+client
			rate := 0.0
			if attempts > 0 {
				rate = 100 * float64(failures) / float64(attempts)
			}
			o := Outcome{Figures: map[string]any{
				"requests": requests, "server_failures": server, "client_failures": client,
				"attempts": attempts, "error_rate_percent": round2(rate),
				"threshold_percent": maxPercent, "min_sample": minSample, "window": humanDuration(window),
			}}
			switch {
			case attempts < minSample:
				o.Skipped = true
				o.Summary = fmt.Sprintf("Only %d ingest attempts in the last %s, below the minimum sample of %d: not judged.", attempts, humanDuration(window), minSample)
			default:
				// Compare in integers scaled by 100 so that exactly the
				// threshold (5 of 100) does not fire.
				o.Failing = float64(failures)*100 > maxPercent*float64(attempts)
				o.Summary = fmt.Sprintf("Ingest error rate %.2f%% over the last %s (%d failures in %d attempts), threshold %v%%.",
					rate, humanDuration(window), failures, attempts, maxPercent)
			}
			return o, nil
		}}
}

func count(n int64) string {
	if n == 0 {
		return "No"
	}
	return fmt.Sprint(n)
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
