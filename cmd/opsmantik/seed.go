package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/opsmantik/opsmantik/pkg/seed"
)

const seedUsage = "usage: opsmantik seed --site ID --sessions N --days D [--seed S] [--now RFC3339]"

// runSeed writes realistic history for a site straight into the database
// (COPY), then refreshes the daily view once.
func runSeed(ctx context.Context, args []string) error {
	var o seed.Options
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.StringVar(&o.PublicID, "site", "", "the site's public id (required; the site must exist)")
	fs.Int64Var(&o.Sessions, "sessions", 0, fmt.Sprintf("sessions to write, 1 to %d (required)", seed.MaxSessions))
	fs.IntVar(&o.Days, "days", 0, fmt.Sprintf("site-local days to spread them over, ending today, 1 to %d (required)", seed.MaxDays))
	fs.Uint64Var(&o.Seed, "seed", uint64(time.Now().UnixNano()), "seed for reproducible rows (default: time-based; printed at the end)")
	now := fs.String("now", "", "end of the range as RFC 3339 (default: the current time); with the same --seed, the same rows")
	fs.IntVar(&o.Chunk, "chunk", seed.DefaultChunk, "sessions per COPY transaction")
	fs.IntVar(&o.Writers, "writers", seed.DefaultWriters, "COPY transactions in flight, each on its own connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), seedUsage)
	}
	if *now != "" {
		t, err := time.Parse(time.RFC3339Nano, *now)
		if err != nil {
			return fmt.Errorf("--now %q: want an RFC 3339 time such as 2026-03-31T12:00:00Z", *now)
		}
		o.Now = t
	}
	if o.Chunk < 1 || o.Writers < 1 {
		return fmt.Errorf("--chunk and --writers must be at least 1, got %d and %d\n%s", o.Chunk, o.Writers, seedUsage)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w\n%s", err, seedUsage)
	}
	pool, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	o.Progress = os.Stderr
	sum, err := seed.Run(ctx, pool, o)
	if sum.Sessions > 0 {
		fmt.Println(sum)
	}
	if err != nil {
		return err
	}
	fmt.Println(sum.RefreshLine())
	return nil
}
