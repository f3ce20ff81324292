package audit

import (
	"fmt"
	"time"
)

// Window is the span of received data a run audits: [From, To).
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// ConversionGrace is how long after a session qualified its conversion row
// may still be missing without counting as missed (AUD005). The schema
// keeps no qualification time; a session's last_active_at is at or after
// it (the score only grows with interactions), so "last active more than
// ConversionGrace before the run" means "qualified more than
// ConversionGrace before the run".
const ConversionGrace = time.Hour

// Check is one integrity check: a stable code and name, what one anomaly is
// and what its ratio is over, and the one query that measures it for every
// site at once (or for one site). The query returns a row per site with data
// in the window: site_id, denominator, count, and up to five sample ids.
type Check struct {
	Code    string
	Name    string
	Anomaly string // what one anomaly is: "events with no session row"
	Over    string // what the ratio is over: "events received in the window"
	Samples string // what the sample ids are: "event ids"
	SQL     string
	// Args are the query's parameters for a window and a site (0: every site).
	Args func(w Window, siteID int64) []any
}

// Checks are the five checks, in code order.
func Checks() []Check {
	return []Check{OrphanedEvents(), TimeTravel(), AttributionGap(), CounterDrift(), MissedConversion()}
}

// windowArgs are the parameters of a check over the window itself.
func windowArgs(w Window, siteID int64) []any { return []any{w.From, w.To, siteID} }

// Every query is bounded by the window through a BRIN index (sql/0008):
// events by received_at, sessions by created_at (the server's time of a
// session's first batch, never updated). The window's sessions are the ones
// first received in it. Lookups from a window row into the big tables are
// LATERAL subqueries with LIMIT or an aggregate, which the planner cannot
// turn into a hash join over the whole of the other table: each is one
// index probe (sessions_pkey, events_session_idx, the conversions' unique
// key), so the work grows with the window, not with the history.

// siteFilter restricts a query to one site when $3 is not 0.
const siteFilter = `($3::bigint = 0 OR %s.site_id = $3::bigint)`

// orphanedEventsSQL: events received in the window whose (site, session)
// has no session row.
var orphanedEventsSQL = `
SELECT e.site_id, count(*) AS total,
       count(*) FILTER (WHERE s.found IS NULL) AS anomalies,
       (array_agg(e.id::text) FILTER (WHERE s.found IS NULL))[1:5] AS samples
FROM events e
LEFT JOIN LATERAL (
    SELECT true AS found FROM sessions s
    WHERE s.site_id = e.site_id AND s.id = e.session_id
    LIMIT 1
) s ON true
WHERE e.received_at >= $1::timestamptz AND e.received_at < $2::timestamptz
  AND ` + fmt.Sprintf(siteFilter, "e") + `
GROUP BY e.site_id
ORDER BY e.site_id`

// OrphanedEvents (AUD001): an event with no session row, over the window's
// events. The ingest path writes both in one statement; this catches manual
// deletes, partial restores, retention jobs and bugs.
func OrphanedEvents() Check {
	return Check{Code: "AUD001", Name: "ORPHANED_EVENTS",
		Anomaly: "events with no session row", Over: "events received in the window", Samples: "event ids",
		SQL: orphanedEventsSQL, Args: windowArgs}
}

// timeTravelSQL: events received in the window that occurred before their
// session started. An orphan has no start to compare with: it counts in the
// denominator only (AUD001 reports it).
var timeTravelSQL = `
SELECT e.site_id, count(*) AS total,
       count(*) FILTER (WHERE e.occurred_at < s.started_at) AS anomalies,
       (array_agg(e.id::text) FILTER (WHERE e.occurred_at < s.started_at))[1:5] AS samples
FROM events e
LEFT JOIN LATERAL (
    SELECT s.started_at FROM sessions s
    WHERE s.site_id = e.site_id AND s.id = e.session_id
    LIMIT 1
) s ON true
WHERE e.received_at >= $1::timestamptz AND e.received_at < $2::timestamptz
  AND ` + fmt.Sprintf(siteFilter, "e") + `
GROUP BY e.site_id
ORDER BY e.site_id`

// TimeTravel (AUD002): an event whose time is before its session's
// started_at, over the window's events. The ingest path keeps started_at the
// earliest time of the session (LEAST over every batch, both corrected by
// the same clock skew), so this is a hand-edited or restored row.
func TimeTravel() Check {
	return Check{Code: "AUD002", Name: "TIME_TRAVEL",
		Anomaly: "events that occurred before their session started", Over: "events received in the window", Samples: "event ids",
		SQL: timeTravelSQL, Args: windowArgs}
}

// attributionGapSQL: non-bot sessions first received in the window with
// utm_source google (any case, surrounding whitespace ignored) and no Google
// click id (NULL or blank).
var attributionGapSQL = `
SELECT x.site_id, count(*) AS total,
       count(*) FILTER (WHERE g.gap) AS anomalies,
       (array_agg(x.id::text) FILTER (WHERE g.gap))[1:5] AS samples
FROM sessions x
CROSS JOIN LATERAL (
    SELECT lower(btrim(x.utm_source, E' \t\r\n')) = 'google'
           AND nullif(btrim(x.gclid), '') IS NULL
           AND nullif(btrim(x.wbraid), '') IS NULL
           AND nullif(btrim(x.gbraid), '') IS NULL AS gap
) g
WHERE x.created_at >= $1::timestamptz AND x.created_at < $2::timestamptz
  AND NOT x.is_bot
  AND ` + fmt.Sprintf(siteFilter, "x") + `
GROUP BY x.site_id
ORDER BY x.site_id`

// AttributionGap (AUD003): a non-bot session tagged utm_source=google with
// no gclid, wbraid or gbraid, over the window's non-bot sessions: an ad
// whose auto-tagging is off, or a landing page (a redirect, a consent
// banner) that drops the click id before the tracker reads it.
func AttributionGap() Check {
	return Check{Code: "AUD003", Name: "ATTRIBUTION_GAP",
		Anomaly: "non-bot sessions with utm_source=google and no gclid, wbraid or gbraid", Over: "non-bot sessions first received in the window",
		Samples: "session ids", SQL: attributionGapSQL, Args: windowArgs}
}

// counterDriftSQL: sessions first received in the window whose counters
// differ from their event rows (all of them, whenever received), counted
// through events_session_idx.
var counterDriftSQL = `
SELECT x.site_id, count(*) AS total,
       count(*) FILTER (WHERE d.drift) AS anomalies,
       (array_agg(x.id::text) FILTER (WHERE d.drift))[1:5] AS samples
FROM sessions x
CROSS JOIN LATERAL (
    SELECT count(*) AS events,
           count(*) FILTER (WHERE e.type = 'pageview') AS pageviews,
           count(*) FILTER (WHERE e.type = 'phone_click') AS phone,
           count(*) FILTER (WHERE e.type = 'whatsapp_click') AS whatsapp,
           count(*) FILTER (WHERE e.type = 'form_submit') AS forms,
           count(*) FILTER (WHERE e.type = 'custom') AS custom
    FROM events e
    WHERE e.site_id = x.site_id AND e.session_id = x.id
) c
CROSS JOIN LATERAL (
    SELECT x.event_count <> c.events OR x.pageviews <> c.pageviews
        OR x.phone_clicks <> c.phone OR x.whatsapp_clicks <> c.whatsapp
        OR x.form_submits <> c.forms OR x.custom_events <> c.custom AS drift
) d
WHERE x.created_at >= $1::timestamptz AND x.created_at < $2::timestamptz
  AND ` + fmt.Sprintf(siteFilter, "x") + `
GROUP BY x.site_id
ORDER BY x.site_id`

// CounterDrift (AUD004): a session whose counters (event_count, pageviews,
// phone_clicks, whatsapp_clicks, form_submits, custom_events) differ from
// its event rows, over the window's sessions (bots included).
func CounterDrift() Check {
	return Check{Code: "AUD004", Name: "COUNTER_DRIFT",
		Anomaly: "sessions whose counters differ from their event rows", Over: "sessions first received in the window",
		Samples: "session ids", SQL: counterDriftSQL, Args: windowArgs}
}

// missedConversionSQL: $1 and $2 are the window moved back by
// ConversionGrace, $2 also the latest last_active_at that is due. A
// session is qualified as the ingest path's conversionSQL decides: non-bot,
// a click id, lead_score above its site's threshold, on a site with Google
// Ads (customer id and conversion action) or GA4 (measurement id and API
// secret) configured. It is missed when a configured destination has no
// outbox row for any of its click ids (a click converts once, whichever of
// its sessions qualified first). The click-id test is conversionSQL's
// coalesce, not the predicate of the click-id partial indexes: those would
// let the planner walk every click-id session of the history instead of
// the window's block ranges.
var missedConversionSQL = `
SELECT x.site_id, count(*) AS total,
       count(*) FILTER (WHERE m.missed) AS anomalies,
       (array_agg(x.id::text) FILTER (WHERE m.missed))[1:5] AS samples
FROM sites st
JOIN sessions x ON x.site_id = st.id
CROSS JOIN LATERAL (
    SELECT st.google_ads_customer_id IS NOT NULL AND st.google_ads_conversion_action IS NOT NULL AS ads,
           st.ga4_measurement_id IS NOT NULL AND st.ga4_api_secret IS NOT NULL AS ga4
) cfg
LEFT JOIN LATERAL (
    SELECT true AS found FROM conversions c
    WHERE c.site_id = x.site_id AND c.destination = 'google_ads' AND c.click_id IN (x.gclid, x.gbraid, x.wbraid)
    LIMIT 1
) ads ON cfg.ads
LEFT JOIN LATERAL (
    SELECT true AS found FROM conversions c
    WHERE c.site_id = x.site_id AND c.destination = 'ga4' AND c.click_id IN (x.gclid, x.gbraid, x.wbraid)
    LIMIT 1
) ga4 ON cfg.ga4
CROSS JOIN LATERAL (
    SELECT (cfg.ads AND ads.found IS NULL) OR (cfg.ga4 AND ga4.found IS NULL) AS missed
) m
WHERE x.created_at >= $1::timestamptz AND x.created_at < $2::timestamptz
  AND x.last_active_at < $2::timestamptz
  AND NOT x.is_bot
  AND coalesce(x.gclid, x.gbraid, x.wbraid) IS NOT NULL
  AND x.lead_score > st.lead_threshold
  AND (cfg.ads OR cfg.ga4)
  AND ` + fmt.Sprintf(siteFilter, "x") + `
GROUP BY x.site_id
ORDER BY x.site_id`

// MissedConversion (AUD005): a qualified non-bot session with a click id,
// on a site with Google Ads or GA4 configured, with no conversion row an
// hour after it qualified, over the window's qualified sessions. Precisely:
// the sessions first received in the window moved back by ConversionGrace
// whose last_active_at is more than ConversionGrace before the end of the
// window (the run), that qualify, with no outbox row for one of their
// site's destinations. Moving the window back makes consecutive daily runs
// judge every session once it is due; only a visit still active at the
// moment ConversionGrace before a run, that began before it, falls between
// two runs (the watchtower's sweep is the live safety net).
func MissedConversion() Check {
	return Check{Code: "AUD005", Name: "MISSED_CONVERSION",
		Anomaly: "qualified sessions with a click id and no conversion row an hour after they qualified",
		Over:    "qualified sessions with a click id, first received in the window moved back an hour and last active more than an hour before its end",
		Samples: "session ids", SQL: missedConversionSQL,
		Args: func(w Window, siteID int64) []any {
			return []any{w.From.Add(-ConversionGrace), w.To.Add(-ConversionGrace), siteID}
		}}
}
