package audit_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/seed"
	"github.com/opsmantik/opsmantik/pkg/simulate"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// wantClean requires every check to have judged the site with rows in its
// denominator and found nothing, and nothing to have been sent or stored.
func wantClean(t *testing.T, f *fixture, r audit.Report, publicID string, checks ...string) {
	t.Helper()
	for _, code := range checks {
		c := checkOf(r, code)
		if c.Outcome != "ok" || c.SitesJudged != 1 || c.Denominator == 0 || c.Anomalies != 0 || len(c.Sites) != 0 {
			t.Errorf("%s on %s: %+v, want the site judged over some rows with no anomaly", code, publicID, c)
		}
		t.Logf("%s: 0 of %d", code, c.Denominator)
	}
	if msgs := f.texts(0); len(msgs) != 0 {
		t.Errorf("sent %q", msgs)
	}
	if got := f.storedFindings(t, r.RunID); len(got) != 0 {
		t.Errorf("stored findings %v", got)
	}
}

// Visits played by `opsmantik simulate`'s generator through the real sync
// handler, on a site with Google Ads and GA4, leave nothing for any check
// to find (the outbox rows are the ingest path's own).
func TestSimulatedTrafficThroughTheIngestHandlerIsClean(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := sites.Add(ctx, f.pool, sites.NewSite{PublicID: "sim", Name: "Sim", Domains: []string{"shop.example"}}); err != nil {
		t.Fatal(err)
	}
	f.exec(t, `UPDATE sites SET google_ads_customer_id = '1234567890', google_ads_conversion_action = 'Qualified lead',
		ga4_measurement_id = 'G-TEST1234', ga4_api_secret = 'mp-secret'`)
	srv := httptest.NewServer(ingest.New(f.pool, ingest.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))))
	defer srv.Close()
	gen, err := simulate.NewGenerator(simulate.Options{Site: "sim", Origin: "https://shop.example", Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := simulate.Run(ctx, simulate.Config{URL: srv.URL + "/api/sync", Visitors: 600, Concurrency: 4, Generator: gen})
	if err != nil || sum.Accepted == 0 {
		t.Fatalf("simulate: %v (%d accepted)", err, sum.Accepted)
	}

	// Two hours on, so that the qualified leads are due for AUD005.
	f.clock.Set(time.Now().Add(2 * time.Hour))
	r := f.run(t)
	wantClean(t, f, r, "sim", "AUD001", "AUD002", "AUD003", "AUD004", "AUD005")
}

// The seed (what the benchmark audits) writes what the ingest path would:
// nothing to find for the checks it has data for (its site has no
// conversion destination, so AUD005 has nothing to judge).
func TestSeededHistoryIsClean(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := sites.Add(ctx, f.pool, sites.NewSite{PublicID: "seeded", Domains: []string{"seeded.example"}, Timezone: "Europe/Istanbul"}); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Run(ctx, f.pool, seed.Options{PublicID: "seeded", Sessions: 20000, Days: 3, Seed: 7, Now: t0, SkipRefresh: true}); err != nil {
		t.Fatal(err)
	}
	r := f.run(t)
	wantClean(t, f, r, "seeded", "AUD001", "AUD002", "AUD003", "AUD004")
	if c := checkOf(r, "AUD005"); c.SitesJudged != 0 {
		t.Errorf("AUD005 judged %d sites; the seeded site has no destination", c.SitesJudged)
	}
}
