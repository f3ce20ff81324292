package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// runStats prints the answer GET /api/stats gives for the same parameters,
// without a key (the operator has the database).
func runStats(ctx context.Context, args []string) error {
	var site string
	q := url.Values{}
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.StringVar(&site, "site", "", "the site's public id")
	for _, name := range []string{"period", "from", "to", "traffic_source", "device_type"} {
		fs.Func(strings.ReplaceAll(name, "_", "-"), "the endpoint's "+name+" parameter", func(v string) error { q.Add(name, v); return nil })
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if site == "" || fs.NArg() > 0 {
		return errors.New("usage: opsmantik stats --site ID (--period today|7d|30d|90d | --from YYYY-MM-DD --to YYYY-MM-DD) [--traffic-source S] [--device-type D]")
	}
	req, err := stats.ParseRequest(q)
	if err != nil {
		return err
	}
	pool, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := sites.ByPublicID(ctx, pool, site)
	if errors.Is(err, sites.ErrNotFound) {
		return fmt.Errorf("no site has public id %q", site)
	}
	if err != nil {
		return err
	}
	a, err := stats.NewService(pool).Summary(ctx, s.ID, req)
	if err != nil {
		return err
	}
	return printJSON(a)
}
