package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/opsmantik/opsmantik/pkg/seed"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// statsBenchOptions are the daily-analytics benchmark's knobs.
type statsBenchOptions struct {
	sessions int64
	days     int
	rounds   int
}

func addStatsBenchFlags(fs *flag.FlagSet) *statsBenchOptions {
	o := &statsBenchOptions{}
	def := int64(100_000)
	if v, err := strconv.ParseInt(os.Getenv("SESSIONS"), 10, 64); err == nil && v > 0 {
		def = v // make bench SESSIONS=1000000
	}
	fs.Int64Var(&o.sessions, "stats-sessions", def, "sessions seeded for the daily-analytics benchmark (0 skips it; default $SESSIONS or 100000)")
	fs.IntVar(&o.days, "stats-days", 90, "days the seeded sessions span")
	fs.IntVar(&o.rounds, "stats-rounds", 30, "summaries measured per path")
	return o
}

// runStatsBench seeds one site with o.sessions sessions over o.days days
// (opsmantik seed's generator), refreshes the view, and compares the 90-day
// summary through StatsService (view for past days, live rows for today)
// with the all-live computation of the same answer.
func runStatsBench(ctx context.Context, serverURL string, o *statsBenchOptions) error {
	if o.sessions <= 0 {
		return nil
	}
	fmt.Printf("== daily analytics (%d sessions over %d days, one site) ==\n", o.sessions, o.days)
	pool, drop, err := benchDatabase(ctx, serverURL, "stats", 4)
	if err != nil {
		return err
	}
	defer drop()
	defer pool.Close()
	site, err := sites.Ensure(ctx, pool, sites.NewSite{PublicID: "stats-bench", Domains: []string{"shop.example"}, Timezone: "Europe/Istanbul"})
	if err != nil {
		return err
	}
	sum, err := seed.Run(ctx, pool, seed.Options{SiteID: site.ID, Sessions: o.sessions, Days: o.days, Seed: 42, SkipRefresh: true})
	if err != nil {
		return err
	}
	fmt.Printf("seed: %s\n", sum)
	ref, err := stats.RunRefresh(ctx, pool, stats.TriggerCLI)
	if err != nil {
		return err
	}
	fmt.Printf("refresh of mv_daily_analytics_summary: %.0f ms (%d rows)\n", ref.Ms, ref.Rows)

	svc := stats.NewService(pool)
	req := stats.Request{Period: "90d"}
	measure := func(rounds int, f func() (stats.Answer, error)) ([]time.Duration, stats.Answer, error) {
		var a stats.Answer
		var err error
		if a, err = f(); err != nil { // warm-up
			return nil, a, err
		}
		times := make([]time.Duration, 0, rounds)
		for range rounds {
			start := time.Now()
			if a, err = f(); err != nil {
				return nil, a, err
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		return times, a, nil
	}
	viewTimes, viewAnswer, err := measure(o.rounds, func() (stats.Answer, error) { return svc.Summary(ctx, site.ID, req) })
	if err != nil {
		return err
	}
	liveRounds := max(3, o.rounds/5) // the slow side: fewer rounds
	liveTimes, liveAnswer, err := measure(liveRounds, func() (stats.Answer, error) { return svc.LiveSummary(ctx, site.ID, req) })
	if err != nil {
		return err
	}
	if viewAnswer.Totals != liveAnswer.Totals {
		return fmt.Errorf("the view's answer differs from the live one: %+v vs %+v", viewAnswer.Totals, liveAnswer.Totals)
	}
	p := func(t []time.Duration, q float64) time.Duration { return t[min(len(t)-1, int(q*float64(len(t))))] }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("90-day summary, StatsService (view %d days + live %d): p50 %.2f ms, p99 %.2f ms over %d runs (target p50 < 20 ms)\n",
		viewAnswer.ServedFrom.ViewDays, viewAnswer.ServedFrom.LiveDays, ms(p(viewTimes, 0.5)), ms(p(viewTimes, 0.99)), len(viewTimes))
	fmt.Printf("90-day summary, all live: p50 %.2f ms, p99 %.2f ms over %d runs\n", ms(p(liveTimes, 0.5)), ms(p(liveTimes, 0.99)), len(liveTimes))
	fmt.Printf("ratio live/view (p50): %.0f× (target ≥ 100×); same totals: %d sessions\n",
		float64(p(liveTimes, 0.5))/float64(p(viewTimes, 0.5)), viewAnswer.Totals.Sessions)
	return nil
}
