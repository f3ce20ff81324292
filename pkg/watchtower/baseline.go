package watchtower

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// baselineWeeks is how many earlier weeks a site's baseline looks at.
const baselineWeeks = 4

// siteBaseline judges each site against its own history. A site fails when
// no session matching filter started in the last window AND the same window
// of the same local hour-of-week (in the site's time zone, so that a shop's
// Monday 9:00 stays Monday 9:00 across daylight-saving changes) had at least
// minExpected such sessions on average over the last four weeks:
//
//	expected = (n₁ + n₂ + n₃ + n₄) / 4,  nₖ = sessions started in
//	[end − window, end), end = now shifted back k weeks in local time
//
// A site is not judged (left out of Outcome.Sites) when it is quiet but
// expected is below minExpected (a quiet hour that is normally quiet), or
// when it has less than four weeks of data: no session of it started
// before the oldest baseline window. A site with a session in the window
// passes.
//
// The work is bounded: one index probe per site for the current window
// (LIMIT 1: written so, not as EXISTS, which the planner may turn into a
// hash of every session in the window), and only for quiet sites four counts of
// at most countCap rows each and one probe for the oldest session (ORDER BY
// started_at keeps it on the index: a sequential scan "until the first
// match" reads the whole table for a site that has no old session), all on
// (site_id, started_at) indexes: sessions_site_started_idx for traffic,
// sessions_site_click_started_idx for click ids.
type siteBaseline struct {
	what        string // "non-bot sessions"
	filter      string // SQL predicate on sessions x
	window      time.Duration
	minExpected float64
}

// siteBaselineQuery: $1 now, $2 window in microseconds, $3 countCap.
const siteBaselineQuery = `
SELECT s.id, s.public_id, s.name, s.timezone, cur.seen, b.counts, coalesce(h.history, false)
FROM sites s
CROSS JOIN LATERAL (
    SELECT count(*) > 0 AS seen FROM (
        SELECT 1 FROM sessions x
        WHERE x.site_id = s.id AND {{filter}}
          AND x.started_at >= $1::timestamptz - $2::bigint * interval '1 microsecond'
        LIMIT 1
    ) y
) cur
LEFT JOIN LATERAL (
    SELECT array_agg(c.n ORDER BY w.k) AS counts, min(w.from_at) AS oldest
    FROM (
        SELECT k, e.end_at - $2::bigint * interval '1 microsecond' AS from_at, e.end_at
        FROM generate_series(1, {{weeks}}) AS k,
             LATERAL (SELECT (($1::timestamptz AT TIME ZONE s.timezone) - make_interval(weeks => k)) AT TIME ZONE s.timezone AS end_at) e
    ) w,
    LATERAL (
        SELECT count(*) AS n FROM (
            SELECT 1 FROM sessions x
            WHERE x.site_id = s.id AND {{filter}}
              AND x.started_at >= w.from_at AND x.started_at < w.end_at
            LIMIT $3
        ) y
    ) c
    WHERE NOT cur.seen
) b ON true
LEFT JOIN LATERAL (
    SELECT count(*) > 0 AS history FROM (
        SELECT 1 FROM sessions o WHERE o.site_id = s.id AND o.started_at < b.oldest
        ORDER BY o.started_at LIMIT 1
    ) y
    WHERE NOT cur.seen
) h ON true
ORDER BY s.id`

func (b siteBaseline) query() string {
	return strings.NewReplacer("{{filter}}", b.filter, "{{weeks}}", fmt.Sprint(baselineWeeks)).Replace(siteBaselineQuery)
}

// judge adds the per-site verdicts to out.
func (b siteBaseline) judge(ctx context.Context, db Querier, now time.Time, out *Outcome) error {
	rows, err := db.Query(ctx, b.query(), now, b.window.Microseconds(), countCap)
	if err != nil {
		return fmt.Errorf("per-site %s: %w", b.what, err)
	}
	defer rows.Close()
	win := humanDuration(b.window)
	for rows.Next() {
		var s Site
		var tz string
		var seen, history bool
		var counts []int64
		if err := rows.Scan(&s.ID, &s.PublicID, &s.Name, &tz, &seen, &counts, &history); err != nil {
			return fmt.Errorf("per-site %s: %w", b.what, err)
		}
		if seen {
			out.Sites = append(out.Sites, SiteOutcome{Site: s,
				Summary: fmt.Sprintf("%s%s started again in the last %s.", strings.ToUpper(b.what[:1]), b.what[1:], win),
				Figures: map[string]any{"started": "at least 1", "window": win}})
			continue
		}
		if !history || len(counts) != baselineWeeks {
			continue // less than four weeks of data: not judged
		}
		var total int64
		for _, n := range counts {
			total += n
		}
		expected := float64(total) / baselineWeeks
		if expected < b.minExpected {
			continue // normally quiet at this hour: not judged
		}
		out.Sites = append(out.Sites, SiteOutcome{Site: s, Failing: true,
			Summary: fmt.Sprintf("none started in the last %s; expected %s (mean of %s in the same %s window 1–4 weeks earlier, %s time)",
				win, formatFloat(expected), joinInts(counts), win, tz),
			Figures: map[string]any{"started": 0, "expected": round2(expected), "baseline": counts, "window": win, "timezone": tz}})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("per-site %s: %w", b.what, err)
	}
	out.SitesSummary = fmt.Sprintf("No %s started in the last %s on these sites, though their own history expects them (at least %s on average in the same local hour-of-week over the last %d weeks):",
		b.what, win, formatFloat(b.minExpected), baselineWeeks)
	return nil
}

func formatFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

func joinInts(ns []int64) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}
