package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/seed"
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// The audit benchmark's knobs: AUDIT_BENCH_EVENTS (default 1,000,000; the
// target is stated for 10,000,000) seeded over AUDIT_BENCH_DAYS (default 30)
// days, then one audit of the last 24 h.
const (
	defaultAuditBenchEvents = 1_000_000
	defaultAuditBenchDays   = 30
	maxAuditBenchEvents     = 100_000_000
	// seedEventsPerSession is about what the seed writes per session, to turn
	// the events asked for into sessions.
	seedEventsPerSession = 2.4
)

// auditBenchBackfill writes the outbox rows the ingest path would have
// written for the seeded qualified leads (the seed writes none), so that
// AUD005 probes a real outbox and finds nothing missing.
const auditBenchBackfill = `
INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, visitor_id, value, currency, converted_at)
SELECT x.site_id, x.id, 'google_ads',
       CASE WHEN x.gclid IS NOT NULL THEN 'gclid' WHEN x.gbraid IS NOT NULL THEN 'gbraid' ELSE 'wbraid' END,
       coalesce(x.gclid, x.gbraid, x.wbraid), x.visitor_id, x.lead_score, st.currency, x.last_active_at
FROM sessions x JOIN sites st ON st.id = x.site_id
WHERE NOT x.is_bot AND x.lead_score > st.lead_threshold AND coalesce(x.gclid, x.gbraid, x.wbraid) IS NOT NULL
ON CONFLICT (site_id, click_id, destination) DO NOTHING`

// reportAudit seeds a fresh database and prints one audit run's time over
// the last 24 h, each check's time and rows, and each check's plan, saying
// whether any reads events sequentially. Failures are printed, not fatal.
func reportAudit(ctx context.Context, serverURL string) {
	fmt.Println("== integrity audit (one run over the last 24 h) ==")
	if err := benchAudit(ctx, serverURL); err != nil {
		fmt.Printf("audit: not measured: %s\n", shorten(err.Error(), 400))
	}
}

func benchAudit(ctx context.Context, serverURL string) error {
	events, err := envInt("AUDIT_BENCH_EVENTS", defaultAuditBenchEvents, 1000, maxAuditBenchEvents)
	if err != nil {
		return err
	}
	days, err := envInt("AUDIT_BENCH_DAYS", defaultAuditBenchDays, 1, seed.MaxDays)
	if err != nil {
		return err
	}
	pool, drop, err := benchDatabase(ctx, serverURL, "audit", 4)
	if err != nil {
		return err
	}
	defer drop()

	sessions := int64(float64(events)/seedEventsPerSession + 0.5)
	sum, err := seed.Bench(ctx, pool, "bench", sessions, int(days))
	if err != nil {
		return err
	}
	fmt.Println(sum)
	t0 := time.Now()
	for _, q := range []string{
		`UPDATE sites SET google_ads_customer_id = '1234567890', google_ads_conversion_action = 'Qualified lead' WHERE public_id = 'bench'`,
		auditBenchBackfill,
		// What autovacuum does to a table in steady state: statistics and
		// the visibility map.
		`VACUUM (ANALYZE) events, sessions, conversions`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
	}
	fmt.Printf("outbox backfilled, VACUUM (ANALYZE) in %.1fs\n", time.Since(t0).Seconds())

	a := audit.New(pool, telegram.NewConsole(discardLogger()), config.Auditing{Window: 24 * time.Hour, ThresholdPercent: 1},
		audit.Options{Trigger: "bench", Logger: discardLogger()})
	var last audit.Report
	for i, label := range []string{"first run", "second run"} {
		start := time.Now()
		r, err := a.Run(ctx)
		if err != nil {
			return fmt.Errorf("audit %s: %w", label, err)
		}
		took := time.Since(start)
		var parts []string
		var findings int64
		for _, c := range r.Checks {
			parts = append(parts, fmt.Sprintf("%s %d ms over %d rows", c.Code, c.MS, c.Denominator))
			findings += c.Anomalies
		}
		fmt.Printf("audit %s: %.2fs over %d events in the database (target < 5 s at 10,000,000): %s; %d anomalies\n",
			label, took.Seconds(), sum.Events, strings.Join(parts, ", "), findings)
		if i == 1 {
			last = r
		}
	}
	return printAuditPlans(ctx, pool, last.Window)
}

// seqScanOfEvents is what no check's plan may hold.
var seqScanOfEvents = regexp.MustCompile(`Seq Scan on events\b`)

// printAuditPlans prints each check's plan, run (EXPLAIN ANALYZE), and says
// whether any reads events sequentially.
func printAuditPlans(ctx context.Context, pool *pgxpool.Pool, w audit.Window) error {
	var seq []string
	for _, c := range audit.Checks() {
		lines, err := audit.Explain(ctx, pool, c, w, 0, "ANALYZE, BUFFERS, COSTS OFF")
		if err != nil {
			return err
		}
		plan := strings.Join(lines, "\n")
		fmt.Printf("-- %s %s plan:\n%s\n", c.Code, c.Name, plan)
		if seqScanOfEvents.MatchString(plan) {
			seq = append(seq, c.Code)
		}
	}
	if len(seq) > 0 {
		fmt.Printf("FAIL: sequential scan of events in %s\n", strings.Join(seq, ", "))
	} else {
		fmt.Println("no check scans events sequentially: ok")
	}
	return nil
}

// envInt reads a positive integer knob from the environment (underscores
// allowed: 10_000_000).
func envInt(name string, def, lo, hi int64) (int64, error) {
	raw, ok := os.LookupEnv(name)
	if !ok || raw == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(raw, "_", ""), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: must be a whole number from %d to %d, got %q", name, lo, hi, raw)
	}
	return n, nil
}
