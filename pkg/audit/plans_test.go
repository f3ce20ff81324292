package audit_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/seed"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// planIndexes are the indexes each check's plan must use: the window's
// BRIN index, and the index of each lookup from a window row.
var planIndexes = map[string][]string{
	"AUD001": {"events_received_brin", "sessions_pkey"},
	"AUD002": {"events_received_brin", "sessions_pkey"},
	"AUD003": {"sessions_created_brin"},
	"AUD004": {"sessions_created_brin", "events_session_idx"},
	"AUD005": {"sessions_created_brin", "conversions_site_id_click_id_destination_key"},
}

// TestChecksUseTheirIndexes EXPLAINs every check over a month of seeded
// history (analyzed) with conversions for its qualified leads, and requires
// the indexes it is written for and no sequential scan of events, sessions
// or conversions: a run's work grows with the window, not the history.
func TestChecksUseTheirIndexes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := sites.Add(ctx, f.pool, sites.NewSite{PublicID: "month", Domains: []string{"month.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Run(ctx, f.pool, seed.Options{PublicID: "month", Sessions: 40000, Days: 30, Seed: 3, Now: t0, SkipRefresh: true}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE sites SET google_ads_customer_id = '1234567890', google_ads_conversion_action = 'Qualified lead'`,
		`INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, value, currency, converted_at)
		 SELECT x.site_id, x.id, 'google_ads', 'gclid', coalesce(x.gclid, x.gbraid, x.wbraid), x.lead_score, 'USD', x.last_active_at
		 FROM sessions x JOIN sites st ON st.id = x.site_id
		 WHERE NOT x.is_bot AND x.lead_score > st.lead_threshold AND coalesce(x.gclid, x.gbraid, x.wbraid) IS NOT NULL
		 ON CONFLICT DO NOTHING`,
		`ANALYZE`,
	} {
		f.exec(t, q)
	}
	w := audit.Window{From: t0.Add(-24 * time.Hour), To: t0}
	seqScan := regexp.MustCompile(`Seq Scan on (events|sessions|conversions)\b`)
	for _, c := range audit.Checks() {
		plan := explain(t, f, c, w, 0)
		for _, idx := range planIndexes[c.Code] {
			if !strings.Contains(plan, " "+idx+" ") && !strings.Contains(plan, " "+idx+"\n") {
				t.Errorf("%s does not use %s:\n%s", c.Code, idx, plan)
			}
		}
		if m := seqScan.FindString(plan); m != "" {
			t.Errorf("%s has a %s:\n%s", c.Code, m, plan)
		}
		// One site: the same plan shape.
		if m := seqScan.FindString(explain(t, f, c, w, 1)); m != "" {
			t.Errorf("%s for one site has a %s", c.Code, m)
		}
	}
	if len(planIndexes) != len(audit.Checks()) {
		t.Errorf("planIndexes covers %d checks of %d", len(planIndexes), len(audit.Checks()))
	}
}

func explain(t *testing.T, f *fixture, c audit.Check, w audit.Window, siteID int64) string {
	t.Helper()
	plan, err := audit.Explain(context.Background(), f.pool, c, w, siteID, "")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n") + "\n"
}
