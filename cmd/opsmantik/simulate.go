package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/opsmantik/opsmantik/pkg/simulate"
)

func runSimulate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	endpoint := fs.String("url", "", "the sync endpoint, e.g. http://127.0.0.1:8080/api/sync (required)")
	visitors := fs.Int("visitors", 0, "visits to play (required, at least 1)")
	concurrency := fs.Int("concurrency", 4, "visits in flight at once")
	site := fs.String("site", "demo", "the site's public id")
	origin := fs.String("origin", "", "the Origin of the site's pages (default: scheme://host of --url)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed for reproducible visits (default: time-based)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *endpoint == "" || *visitors < 1 {
		return errors.New("usage: opsmantik simulate --url URL --visitors N [--concurrency C] [--site ID] [--origin O] [--seed S]")
	}
	if *origin == "" {
		o, err := simulate.OriginOf(*endpoint)
		if err != nil {
			return err
		}
		*origin = o
	}
	gen, err := simulate.NewGenerator(simulate.Options{Site: *site, Origin: *origin, Seed: *seed})
	if err != nil {
		return err
	}
	summary, err := simulate.Run(ctx, simulate.Config{
		URL:         *endpoint,
		Visitors:    *visitors,
		Concurrency: *concurrency,
		Generator:   gen,
		Client:      simulateClient(*timeout, *concurrency),
	})
	if summary != nil {
		summary.Print(os.Stdout)
	}
	return err
}

// simulateClient keeps one idle connection per worker, as browsers keep theirs alive.
func simulateClient(timeout time.Duration, concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(concurrency, 1)
	return &http.Client{Timeout: timeout, Transport: tr}
}
