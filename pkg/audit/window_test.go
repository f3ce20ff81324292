package audit_test

import (
	"testing"
	"time"
)

// Each check counts what was received in [from, to) and nothing a
// microsecond outside it; AUD005 the window moved back an hour, and only
// sessions last active more than an hour before the run.
func TestTheWindowBoundsEveryCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	from, to := t0.Add(-24*time.Hour), t0
	micro := time.Microsecond
	edges := []time.Time{from.Add(-micro), from, to.Add(-micro), to} // out, in, in, out

	orphans := f.addSite(t, "w-aud001", false, false)
	for _, at := range edges {
		f.exec(t, `INSERT INTO events (site_id, id, session_id, type, occurred_at, received_at)
			VALUES ($1, gen_random_uuid(), gen_random_uuid(), 'pageview', $2, $2)`, orphans.id, at)
	}
	travel := f.addSite(t, "w-aud002", false, false)
	gaps := f.addSite(t, "w-aud003", false, false)
	drift := f.addSite(t, "w-aud004", false, false)
	for _, at := range edges {
		for _, id := range f.fill(t, travel, visits{n: 1, created: at}) {
			f.exec(t, `UPDATE events SET occurred_at = occurred_at - interval '2 minutes' WHERE site_id = $1 AND session_id = $2`, travel.id, id)
		}
		for _, id := range f.fill(t, gaps, visits{n: 1, created: at}) {
			f.exec(t, `UPDATE sessions SET utm_source = 'google' WHERE site_id = $1 AND id = $2`, gaps.id, id)
		}
		for _, id := range f.fill(t, drift, visits{n: 1, created: at}) {
			f.exec(t, `UPDATE sessions SET pageviews = 2 WHERE site_id = $1 AND id = $2`, drift.id, id)
		}
	}
	// AUD005: leads with no conversion row.
	missed := f.addSite(t, "w-aud005", true, false)
	due := to.Add(-time.Hour)
	for i, v := range []visits{
		{created: from.Add(-time.Hour - micro)},                 // out: first received before the moved window
		{created: from.Add(-time.Hour)},                         // in
		{created: due.Add(-micro), lastActive: due.Add(-micro)}, // in: last active just over an hour ago
		{created: due.Add(-time.Second), lastActive: due},       // out: last active exactly an hour ago
		{created: due}, // out: first received after the moved window
	} {
		v.n, v.lead, v.tag = 1, true, string(rune('a'+i))
		f.fill(t, missed, v)
	}

	r := f.run(t)
	for _, c := range []struct {
		code, site string
	}{{"AUD001", "w-aud001"}, {"AUD002", "w-aud002"}, {"AUD003", "w-aud003"}, {"AUD004", "w-aud004"}, {"AUD005", "w-aud005"}} {
		got, listed := r.Finding(c.code, c.site)
		if !listed || got.Count != 2 || got.Denominator != 2 {
			t.Errorf("%s on %s: %d of %d (listed %v), want 2 of 2: the rows just inside the window, not those just outside", c.code, c.site, got.Count, got.Denominator, listed)
		}
	}
}
