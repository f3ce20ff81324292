package watchtower

import (
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// PlanQuery is one of the watchtower's queries with the arguments a run
// gives it, for the test that EXPLAINs them.
type PlanQuery struct {
	Name string
	SQL  string
	Args []any
}

// PlanQueries lists every query a run makes over the big tables.
func PlanQueries(now time.Time, cfg config.Alerting) []PlanQuery {
	traffic := siteBaseline{filter: liveFilter, window: cfg.TrafficWindow}
	clicks := siteBaseline{filter: clickFilter, window: cfg.ClickIDWindow}
	return []PlanQuery{
		{"WT001 installation", startedSessionsQuery, []any{now.Add(-cfg.TrafficWindow), countCap}},
		{"WT002 installation", clickIDSessionsQuery, []any{now.Add(-cfg.ClickIDWindow), countCap}},
		{"WT001 per site", traffic.query(), []any{now, cfg.TrafficWindow.Microseconds(), countCap}},
		{"WT002 per site", clicks.query(), []any{now, cfg.ClickIDWindow.Microseconds(), countCap}},
		{"WT003", ingestErrorRateQuery, []any{now.Add(-cfg.ErrorRateWindow)}},
		{"retention of ingest_counters", deleteOldCounters, []any{now.Add(-countersRetention), retentionBatch}},
		{"retention of ingest_client_failures", deleteOldClientFailures, []any{now.Add(-countersRetention), retentionBatch}},
	}
}
