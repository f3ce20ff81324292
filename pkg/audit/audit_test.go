package audit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// levels are the planted shares of a site's 1,000 rows: 0.9 % and exactly
// 1 % do not alarm, 1.1 % does.
var levels = []struct {
	suffix string
	k      int
	alarm  bool
}{{"09", 9, false}, {"10", 10, false}, {"11", 11, true}}

// plantCase makes one check's sites: a base of 1,000 rows in the check's
// denominator, then k anomalies; plant returns the ids of the rows at fault.
type plantCase struct {
	code, name string
	// destinations configures the site of a level (AUD005).
	destinations func(suffix string) (ads, ga4 bool)
	base         func(t *testing.T, f *fixture, s site) []string
	plant        func(t *testing.T, f *fixture, s site, base []string, k int) []string
}

func plainBase(t *testing.T, f *fixture, s site) []string {
	return f.fill(t, s, visits{n: 1000, created: t0.Add(-time.Minute)})
}

func plantCases() []plantCase {
	return []plantCase{
		{code: "AUD001", name: "ORPHANED_EVENTS", base: plainBase,
			// Deleting k sessions orphans their one event each.
			plant: func(t *testing.T, f *fixture, s site, base []string, k int) []string {
				events := f.eventsOf(t, s, base[:k])
				f.exec(t, `DELETE FROM sessions WHERE site_id = $1 AND id = ANY($2::uuid[])`, s.id, base[:k])
				return events
			}},
		{code: "AUD002", name: "TIME_TRAVEL", base: plainBase,
			plant: func(t *testing.T, f *fixture, s site, base []string, k int) []string {
				return f.ids(t, `
					UPDATE events e SET occurred_at = x.started_at - interval '1 microsecond'
					FROM sessions x
					WHERE x.site_id = e.site_id AND x.id = e.session_id AND e.site_id = $1 AND e.session_id = ANY($2::uuid[])
					RETURNING e.id::text`, s.id, base[:k])
			}},
		{code: "AUD003", name: "ATTRIBUTION_GAP",
			// 950 plain sessions and 50 from a Google ad with a gclid; bots
			// tagged google without a click id count for nothing.
			base: func(t *testing.T, f *fixture, s site) []string {
				plain := f.fill(t, s, visits{n: 950, created: t0.Add(-time.Minute)})
				f.fill(t, s, visits{n: 50, created: t0.Add(-30 * time.Minute), lead: true})
				bots := f.fill(t, s, visits{n: 30, created: t0.Add(-40 * time.Minute), bot: true})
				f.exec(t, `UPDATE sessions SET utm_source = 'google' WHERE site_id = $1 AND id = ANY($2::uuid[])`, s.id, bots)
				return plain
			},
			plant: func(t *testing.T, f *fixture, s site, base []string, k int) []string {
				return f.ids(t, `
					UPDATE sessions x SET
					    utm_source = (ARRAY['google', ' Google ', 'GOOGLE', E'google\t'])[1 + v.n % 4],
					    gclid = CASE WHEN v.n % 3 = 0 THEN '  ' END
					FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM unnest($2::uuid[]) id) v
					WHERE x.site_id = $1 AND x.id = v.id
					RETURNING x.id::text`, s.id, base[:k])
			}},
		{code: "AUD004", name: "COUNTER_DRIFT", base: plainBase,
			// Every counter drifts somewhere, and one session lost its event.
			plant: func(t *testing.T, f *fixture, s site, base []string, k int) []string {
				drifted := f.ids(t, `
					UPDATE sessions x SET
					    event_count     = event_count + (v.n % 7 = 0)::int,
					    pageviews       = pageviews + (v.n % 7 = 1)::int,
					    phone_clicks    = phone_clicks + (v.n % 7 = 2)::int,
					    whatsapp_clicks = whatsapp_clicks + (v.n % 7 = 3)::int,
					    form_submits    = form_submits + (v.n % 7 = 4)::int,
					    custom_events   = custom_events + (v.n % 7 = 5)::int
					FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM unnest($2::uuid[]) id) v
					WHERE x.site_id = $1 AND x.id = v.id AND v.n % 7 <> 6
					RETURNING x.id::text`, s.id, base[:k])
				lost := f.ids(t, `
					DELETE FROM events e USING (SELECT id, row_number() OVER (ORDER BY id) AS n FROM unnest($2::uuid[]) id) v
					WHERE e.site_id = $1 AND e.session_id = v.id AND v.n % 7 = 6
					RETURNING e.session_id::text`, s.id, base[:k])
				return append(drifted, lost...)
			}},
		{code: "AUD005", name: "MISSED_CONVERSION",
			// Google Ads only, GA4 only, both.
			destinations: func(suffix string) (bool, bool) { return suffix != "10", suffix != "09" },
			// 999 due leads, all converted, and a second session of one of
			// their clicks (a new tab), which converted through the first.
			// Not counted: bots, leads not yet an hour old.
			base: func(t *testing.T, f *fixture, s site) []string {
				leads := f.fill(t, s, visits{n: 999, created: t0.Add(-2 * time.Hour), lead: true, convert: true})
				f.cloneSession(t, s, leads[len(leads)-1], t0.Add(-5*time.Hour))
				f.fill(t, s, visits{n: 20, created: t0.Add(-3 * time.Hour), lead: true, bot: true, tag: "bot"})
				f.fill(t, s, visits{n: 20, created: t0.Add(-70 * time.Minute), lead: true, tag: "recent", lastActive: t0.Add(-55 * time.Minute)})
				return leads
			},
			// Missing: both rows, only Google Ads', or only GA4's (on a
			// site with one destination, its row).
			plant: func(t *testing.T, f *fixture, s site, base []string, k int) []string {
				f.exec(t, `
					DELETE FROM conversions c USING (SELECT id, row_number() OVER (ORDER BY id) AS n FROM unnest($2::uuid[]) id) v
					WHERE c.site_id = $1 AND c.session_id = v.id
					  AND (v.n % 3 = 0 OR (SELECT count(DISTINCT destination) FROM conversions WHERE site_id = $1) = 1
					       OR (v.n % 3 = 1 AND c.destination = 'google_ads') OR (v.n % 3 = 2 AND c.destination = 'ga4'))`,
					s.id, base[:k])
				return base[:k]
			}},
	}
}

// cloneSession writes a second session of the same visitor and click as
// sessionID (a new tab), with its own events, created at created.
func (f *fixture) cloneSession(t *testing.T, s site, sessionID string, created time.Time) string {
	t.Helper()
	ids := f.ids(t, `
		WITH n AS (
		    INSERT INTO sessions (site_id, id, visitor_id, started_at, last_seen_at, last_active_at, active_at, created_at, updated_at,
		                          utm_source, gclid, traffic_source, device_type, is_bot,
		                          pageviews, event_count, phone_clicks, form_submits)
		    SELECT site_id, gen_random_uuid(), visitor_id, $3::timestamptz - interval '1 minute', $3::timestamptz - interval '40 seconds',
		           $3::timestamptz - interval '40 seconds', $3::timestamptz - interval '40 seconds', $3::timestamptz, $3::timestamptz,
		           utm_source, gclid, traffic_source, device_type, is_bot,
		           pageviews, event_count, phone_clicks, form_submits
		    FROM sessions WHERE site_id = $1 AND id = $2::uuid
		    RETURNING site_id, id, started_at, created_at
		), e AS (
		    INSERT INTO events (site_id, id, session_id, type, occurred_at, received_at)
		    SELECT n.site_id, gen_random_uuid(), n.id, o.type, n.started_at + (o.occurred_at - x.started_at), n.created_at
		    FROM n, sessions x JOIN events o ON o.site_id = x.site_id AND o.session_id = x.id
		    WHERE x.site_id = $1 AND x.id = $2::uuid
		)
		SELECT id::text FROM n`, s.id, sessionID, created)
	return ids[0]
}

// Every check at 0.9 %, exactly 1 % and 1.1 % on its own sites, all in one
// run: only the 1.1 % site of each check alarms, with real sample ids; the
// others are stored and logged with their figures; the clean sites and the
// sites a check does not apply to have no finding.
func TestOnlyTheSiteAboveTheThresholdAlarmsForEachCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	planted := map[string][]string{} // "AUD001/aud001-11" → ids at fault
	for _, c := range plantCases() {
		for _, l := range levels {
			var ads, ga4 bool
			if c.destinations != nil {
				ads, ga4 = c.destinations(l.suffix)
			}
			s := f.addSite(t, strings.ToLower(c.code)+"-"+l.suffix, ads, ga4)
			base := c.base(t, f, s)
			got := c.plant(t, f, s, base, l.k)
			if len(got) != l.k {
				t.Fatalf("%s: planted %d anomalies, want %d", s.publicID, len(got), l.k)
			}
			planted[c.code+"/"+s.publicID] = got
		}
	}
	clean := f.addSite(t, "clean", true, true)
	f.fill(t, clean, visits{n: 500, created: t0.Add(-time.Minute)})
	f.fill(t, clean, visits{n: 500, created: t0.Add(-2 * time.Hour), lead: true, convert: true})
	// Leads without conversions where none is owed: no destination, or a
	// score (95) that is not above the site's threshold (95).
	f.fill(t, f.addSite(t, "unconfigured", false, false), visits{n: 100, created: t0.Add(-2 * time.Hour), lead: true})
	at95 := f.addSite(t, "threshold-95", true, false)
	f.exec(t, `UPDATE sites SET lead_threshold = 95 WHERE id = $1`, at95.id)
	f.fill(t, at95, visits{n: 100, created: t0.Add(-2 * time.Hour), lead: true})

	r, sent := f.job(t)

	msgs := f.texts(0)
	if len(msgs) != 5 {
		t.Fatalf("sent %d messages, want one alarm per check:\n%s", len(msgs), strings.Join(msgs, "\n---\n"))
	}
	for i, c := range plantCases() {
		alarm := strings.ToLower(c.code) + "-11"
		head := fmt.Sprintf("🚨 [CRITICAL] %s %s on 1 site\n", c.code, c.name)
		line := fmt.Sprintf("• %s (Site %s): 11 of 1000 (1.10%%, above the 1%% threshold); sample ", alarm, alarm)
		if !strings.HasPrefix(msgs[i], head) || !containsAll(msgs[i], line, "more than 1% of a site's", "docs/audit.md") {
			t.Errorf("message %d:\n%s\nwant it to start with %q and list %q", i+1, msgs[i], head, line)
		}
		if strings.Count(msgs[i], "• ") != 1 {
			t.Errorf("message %d names a site under the threshold:\n%s", i+1, msgs[i])
		}
		if got := f.srv.Messages()[i]; got.DisableNotification {
			t.Errorf("message %d is silent; an alarm has sound", i+1)
		}
	}

	var want []string
	for _, c := range plantCases() {
		cr := checkOf(r, c.code)
		if cr.Outcome != "ok" || cr.Alarms != 1 || cr.Anomalies != 30 || len(cr.Sites) != 3 {
			t.Errorf("%s report: outcome %s, %d alarms, %d anomalies, %d sites listed; want ok, 1, 30, 3", c.code, cr.Outcome, cr.Alarms, cr.Anomalies, len(cr.Sites))
		}
		for _, l := range levels {
			pub := strings.ToLower(c.code) + "-" + l.suffix
			got, ok := r.Finding(c.code, pub)
			wantAlert := watchtower.AlertNone
			if l.alarm {
				wantAlert = watchtower.AlertFired
			}
			if !ok || got.Count != int64(l.k) || got.Denominator != 1000 || got.Alarm != l.alarm || got.Alert != wantAlert {
				t.Errorf("%s on %s: %+v (listed %v); want %d of 1000, alarm %v, alert %s", c.code, pub, got, ok, l.k, l.alarm, wantAlert)
			}
			if want := float64(l.k) / 10; got.RatioPercent < want-1e-9 || got.RatioPercent > want+1e-9 {
				t.Errorf("%s on %s: ratio %v%%, want %v%%", c.code, pub, got.RatioPercent, want)
			}
			wantSamples(t, c.code+" on "+pub, got, planted[c.code+"/"+pub])
			line := fmt.Sprintf("%s/%s %d/1000", c.code, pub, l.k)
			if l.alarm {
				line += " alarm"
			}
			want = append(want, line+" samples:5")
		}
	}
	slices.Sort(want)
	if got := f.storedFindings(t, r.RunID); !slices.Equal(got, want) {
		t.Errorf("audit_findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The clean site is judged by every check and has nothing; the sites a
	// check does not apply to are not judged by it.
	for _, c := range plantCases() {
		if _, listed := r.Finding(c.code, "clean"); listed {
			t.Errorf("%s lists the clean site", c.code)
		}
	}
	if got := checkOf(r, "AUD005").SitesJudged; got != 4 { // the three AUD005 sites and clean
		t.Errorf("AUD005 judged %d sites, want 4 (not the unconfigured one, nor the one whose leads are not above its threshold)", got)
	}
	if got := checkOf(r, "AUD001").SitesJudged; got != 18 {
		t.Errorf("AUD001 judged %d sites, want every site with events (18)", got)
	}

	// The one log line has every finding, under the threshold too.
	if got, _ := r.Finding("AUD003", "aud003-09"); got.Count != 9 || got.Alarm || got.Denominator != 1000 || got.Alert != watchtower.AlertNone {
		t.Errorf("log line: AUD003 on aud003-09: %+v", got)
	}
	if len(sent) != 5 || sent[0] != "AUD001/aud001-11:fired" {
		t.Errorf("log line sent %v", sent)
	}

	// The run is recorded.
	var trigger, status string
	var ms int64
	var from, to time.Time
	if err := f.pool.QueryRow(context.Background(), `
		SELECT trigger, status, duration_ms, window_start, window_end FROM audit_runs WHERE id = $1`, r.RunID).Scan(&trigger, &status, &ms, &from, &to); err != nil {
		t.Fatal(err)
	}
	if trigger != audit.TriggerSchedule || status != "ok" || ms < 0 || !from.Equal(t0.Add(-24*time.Hour)) || !to.Equal(t0) {
		t.Errorf("audit_runs: %s %s %d ms, window %s – %s", trigger, status, ms, from, to)
	}
}

func checkOf(r audit.Report, code string) audit.CheckReport {
	for _, c := range r.Checks {
		if c.Code == code {
			return c
		}
	}
	return audit.CheckReport{}
}

// job runs the auditor's Job and returns the report its one log line
// holds (every check's totals and findings) and what it sent.
func (f *fixture) job(t *testing.T) (audit.Report, []string) {
	t.Helper()
	f.logs.Reset()
	if err := f.auditor(t, audit.Options{}).Job(context.Background()); err != nil {
		t.Fatalf("job at %s: %v", f.clock.Now(), err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(f.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"msg":"audit run"`) {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d audit run lines, want 1:\n%s", len(lines), f.logs.String())
	}
	var line struct {
		audit.Report
		Sent []string `json:"sent"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatalf("log line %s: %v", lines[0], err)
	}
	return line.Report, line.Sent
}
