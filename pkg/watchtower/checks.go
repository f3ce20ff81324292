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
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Check is one health check with a stable code ("WT001") and name
// ("TRAFFIC_LOSS"). Measure reads the figures as of now and says whether the
// check fails; an error means the check could not be judged (a connection
// error raises WT000, any other WT009).
type Check struct {
	Code    string
	Name    string
	Level   telegram.Level
	Measure func(ctx context.Context, db Querier, now time.Time) (Outcome, error)
}

// Outcome is what one check found: a verdict for the whole installation
// (alert_state's row with site_id NULL) and, for a check that also judges
// each site, one verdict per site (its own row).
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

	// SitesOnly says the check has no installation-wide verdict: the fields
	// above are ignored and only Sites are judged.
	SitesOnly bool
	// Sites are the per-site verdicts. List every site the check judged,
	// failing or passing; a site left out is not judged (a new site, a
	// quiet hour that is normally quiet) and its alert state is left as it
	// is. Each site fires, repeats and resolves on its own; the sites of one
	// check that are due are told in one message per run.
	Sites []SiteOutcome
	// SitesSummary heads the message that lists the failing sites.
	SitesSummary string
}

// Site names a site in messages and reports.
type Site struct {
	ID       int64  `json:"site_id"`
	PublicID string `json:"public_id"`
	Name     string `json:"name,omitempty"`
}

// Label is how a message names the site: its public id and its name.
func (s Site) Label() string {
	if s.Name == "" || s.Name == s.PublicID {
		return s.PublicID
	}
	return fmt.Sprintf("%s (%s)", s.PublicID, s.Name)
}

// SiteOutcome is one site's verdict within a check.
type SiteOutcome struct {
	Site    Site
	Failing bool // false: passing, which resolves the site's alert if it is firing
	// Summary is the site's line in the message: the figure and what was
	// expected ("no session in the last 1h; expected 12.5 ...").
	Summary string
	Figures map[string]any
}

// Checks are the registered checks with their configured thresholds. To add
// a check, write a function that returns a Check and add one line here.
func Checks(cfg config.Alerting) []Check {
	return []Check{
		TrafficLoss(cfg.TrafficWindow, cfg.SiteMinExpected),
		ClickIDLoss(cfg.ClickIDWindow, cfg.SiteMinExpected),
		IngestErrorRate(cfg.ErrorRateWindow, cfg.ErrorRatePercent, cfg.ErrorRateMinSample),
		AnalyticsStale(cfg.AnalyticsMaxAge),
		ConversionBacklog(cfg.ConversionBacklogAfter),
	}
}

// DatabaseUnreachable is WT000. It has no Measure: the watchtower raises it
// itself, without the database, when the probe or a check's query cannot
// reach the database, and resolves it from watchtower_runs (see runs.go).
func DatabaseUnreachable() Check {
	return Check{Code: "WT000", Name: "DATABASE_UNREACHABLE", Level: telegram.Alarm}
}

// CheckFailed is WT009. It has no Measure: the watchtower raises it when a
// check's query fails for another reason than the connection (a timeout, a
// missing column, a bug), naming every such check; it resolves once every
// check runs again. It goes through alert_state like the others.
func CheckFailed() Check {
	return Check{Code: "WT009", Name: "CHECK_FAILED", Level: telegram.Alarm}
}

// countCap bounds the counts the checks make: they need "none" or "enough",
// never an exact census of a busy hour.
const countCap = 10000

// Why sessions that STARTED in the window: counting sessions seen in it
// would need an index on last_seen_at, which every heartbeat moves, and
// that index made every session update a non-HOT one (0003 dropped it). A
// session ends after 30 idle minutes (PROTOCOL.md), so real traffic keeps
// starting new ones; only a lone visitor busy for longer than the window
// goes unseen.

// Uses sessions_live_started_idx (same predicate).
const startedSessionsQuery = `
SELECT count(*) FROM (
    SELECT 1 FROM sessions
    WHERE NOT is_bot AND started_at >= $1::timestamptz
    LIMIT $2
) x`

// liveFilter is the predicate of a non-bot session; per site it is read
// through sessions_site_started_idx.
const liveFilter = `NOT x.is_bot`

// TrafficLoss (WT001) fails for the installation when no non-bot session
// started within window, and for a site when none of its own did although
// its history says it normally has at least minExpected then (baseline.go).
func TrafficLoss(window time.Duration, minExpected float64) Check {
	perSite := siteBaseline{what: "non-bot sessions", filter: liveFilter, window: window, minExpected: minExpected}
	return Check{Code: "WT001", Name: "TRAFFIC_LOSS", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			var n int64
			if err := db.QueryRow(ctx, startedSessionsQuery, now.Add(-window), countCap).Scan(&n); err != nil {
				return Outcome{}, fmt.Errorf("count started sessions: %w", err)
			}
			out := Outcome{
				Failing: n == 0,
				Summary: fmt.Sprintf("%s non-bot sessions started in the last %s.", capped(n), humanDuration(window)),
				Figures: map[string]any{"started_sessions": n, "window": humanDuration(window)},
			}
			return out, perSite.judge(ctx, db, now, &out)
		}}
}

// Uses sessions_click_started_idx (same predicate).
const clickIDSessionsQuery = `
SELECT count(*) FROM (
    SELECT 1 FROM sessions
    WHERE NOT is_bot AND (gclid IS NOT NULL OR wbraid IS NOT NULL OR gbraid IS NOT NULL)
      AND started_at >= $1::timestamptz
    LIMIT $2
) x`

// clickFilter is the predicate of sessions_site_click_started_idx, word for
// word, so that the planner can use it.
const clickFilter = `NOT x.is_bot AND (x.gclid IS NOT NULL OR x.wbraid IS NOT NULL OR x.gbraid IS NOT NULL)`

// ClickIDLoss (WT002) fails for the installation when no non-bot session
// with a Google click id (gclid, wbraid or gbraid) started within window,
// and for a site that normally gets such sessions then (as TrafficLoss).
func ClickIDLoss(window time.Duration, minExpected float64) Check {
	perSite := siteBaseline{what: "non-bot sessions with a Google click id", filter: clickFilter, window: window, minExpected: minExpected}
	return Check{Code: "WT002", Name: "GCLID_LOSS", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			var n int64
			if err := db.QueryRow(ctx, clickIDSessionsQuery, now.Add(-window), countCap).Scan(&n); err != nil {
				return Outcome{}, fmt.Errorf("count sessions with a click id: %w", err)
			}
			out := Outcome{
				Failing: n == 0,
				Summary: fmt.Sprintf("%s non-bot sessions with a Google click id (gclid, wbraid, gbraid) started in the last %s.", capped(n), humanDuration(window)),
				Figures: map[string]any{"click_id_sessions": n, "window": humanDuration(window)},
			}
			return out, perSite.judge(ctx, db, now, &out)
		}}
}

// The error rate's two parts. The server part is ingest_counters (sharded
// per minute; sum over shards and buckets). The client part is what browsers
// reported as unanswered attempts, per client (a hash of the IP address) in
// ingest_client_failures; the single largest client's share is left out, so
// the figure judged is the lowest error rate that leaving out any one client
// can give: WT003 fires only if it would fire without whichever client
// reported the most. Both tables are read by bucket through their primary
// keys.
const ingestErrorRateQuery = `
WITH counters AS (
    SELECT coalesce(sum(requests), 0)::bigint AS requests,
           coalesce(sum(server_failures), 0)::bigint AS server_failures
    FROM ingest_counters
    WHERE bucket >= $1::timestamptz
), clients AS (
    SELECT sum(failures)::bigint AS failures
    FROM ingest_client_failures
    WHERE bucket >= $1::timestamptz
    GROUP BY client
)
SELECT counters.requests, counters.server_failures,
       (SELECT coalesce(sum(failures), 0)::bigint FROM clients),
       (SELECT coalesce(max(failures), 0)::bigint FROM clients),
       (SELECT count(*) FROM clients)
FROM counters`

// IngestErrorRate (WT003) fails when, over window, failures ÷ attempts is
// above maxPercent, where attempts are the browsers' requests plus the
// counted client failures and failures are the server's failures plus the
// counted client failures; counted means without the largest single
// client's contribution (see ingestErrorRateQuery). Below minSample attempts
// it is not judged (Outcome.Skipped): a quiet hour neither fires it nor
// resolves it.
func IngestErrorRate(window time.Duration, maxPercent float64, minSample int64) Check {
	return Check{Code: "WT003", Name: "INGEST_ERROR_RATE", Level: telegram.Alarm,
		Measure: func(ctx context.Context, db Querier, now time.Time) (Outcome, error) {
			var requests, server, reported, largest, clients int64
			if err := db.QueryRow(ctx, ingestErrorRateQuery, now.Add(-window)).Scan(&requests, &server, &reported, &largest, &clients); err != nil {
				return Outcome{}, fmt.Errorf("sum ingest counters and client failures: %w", err)
			}
			client := reported - largest
			attempts, failures := requests+client, server+client
			rate := 0.0
			if attempts > 0 {
				rate = 100 * float64(failures) / float64(attempts)
			}
			o := Outcome{Figures: map[string]any{
				"requests": requests, "server_failures": server,
				"client_failures": client, "client_failures_reported": reported,
				"client_failures_largest_client": largest, "clients_reporting": clients,
				"attempts": attempts, "error_rate_percent": round2(rate),
				"threshold_percent": maxPercent, "min_sample": minSample, "window": humanDuration(window),
			}}
			parts := fmt.Sprintf("Server part: %d failures in %d browser requests. Client part: %d unanswered attempts counted of %d reported by %d clients (the largest single client's %d left out).",
				server, requests, client, reported, clients, largest)
			switch {
			case attempts < minSample:
				o.Skipped = true
				o.Summary = fmt.Sprintf("Only %d ingest attempts in the last %s, below the minimum sample of %d: not judged. %s", attempts, humanDuration(window), minSample, parts)
			default:
				// Compare in integers scaled by 100 so that exactly the
				// threshold (5 of 100) does not fire.
				o.Failing = float64(failures)*100 > maxPercent*float64(attempts)
				o.Summary = fmt.Sprintf("Ingest error rate %.2f%% over the last %s (%d failures in %d attempts), threshold %v%%. %s",
					rate, humanDuration(window), failures, attempts, maxPercent, parts)
			}
			return o, nil
		}}
}

// capped writes a capped count: "No", "12", "At least 10000".
func capped(n int64) string {
	switch {
	case n == 0:
		return "No"
	case n >= countCap:
		return fmt.Sprintf("At least %d", n)
	}
	return fmt.Sprint(n)
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
