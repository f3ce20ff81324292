package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/opsmantik/opsmantik/pkg/sites"
)

const siteUsage = `usage: opsmantik site add --public-id ID --domain D [--domain D...] [--timezone TZ] [--currency C] [--name N]
       opsmantik site list
       opsmantik site set --public-id ID [--timezone TZ] [--currency C] [--lead-threshold N] [--name N] [--domain D...]
       opsmantik site rotate-key --public-id ID`

// siteWithKey is what `site add` and `site rotate-key` print: the site and
// its new API key, shown this once.
type siteWithKey struct {
	sites.Site
	APIKey string `json:"api_key"`
}

// runSiteSet changes the fields whose flags are given.
func runSiteSet(ctx context.Context, args []string) error {
	var publicID, name, timezone, currency string
	var threshold int
	var domains stringList
	fs := flag.NewFlagSet("site set", flag.ContinueOnError)
	fs.StringVar(&publicID, "public-id", "", "the site to change")
	fs.StringVar(&name, "name", "", "display name")
	fs.Var(&domains, "domain", "an allowed domain (repeatable); the list replaces the current one")
	fs.StringVar(&timezone, "timezone", "", "IANA time zone for daily figures")
	fs.StringVar(&currency, "currency", "", "ISO 4217 currency of conversion values")
	fs.IntVar(&threshold, "lead-threshold", 0, "a session is a qualified lead when its lead score is greater (0-100)")
	ads := adsFlags(fs) // site_ads.go: Google Ads, GA4, consent
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("site set: unexpected argument %q", fs.Arg(0))
	}
	if publicID == "" {
		return errors.New("site set: --public-id is required")
	}
	var c sites.Changes
	changed, any := false, false
	fs.Visit(func(f *flag.Flag) {
		any = any || f.Name != "public-id"
		switch f.Name {
		case "name", "domain", "timezone", "currency", "lead-threshold":
			changed = true
		}
		switch f.Name {
		case "name":
			c.Name = &name
		case "domain":
			c.Domains = domains
		case "timezone":
			c.Timezone = &timezone
		case "currency":
			c.Currency = &currency
		case "lead-threshold":
			c.LeadThreshold = &threshold
		}
	})
	if !any {
		return errors.New("site set: nothing to change: give --name, --domain, --timezone, --currency, --lead-threshold, or the Google Ads / GA4 / consent flags")
	}
	pool, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := sites.ByPublicID(ctx, pool, publicID)
	if changed && err == nil {
		s, err = sites.Update(ctx, pool, publicID, c)
	}
	if errors.Is(err, sites.ErrNotFound) {
		return fmt.Errorf("no site has public id %q", publicID)
	}
	if err != nil {
		return err
	}
	a, err := ads.apply(ctx, pool, publicID)
	if err != nil {
		return err
	}
	return printJSON(siteWithAds{Site: s, Ads: a})
}

// runSiteRotateKey gives a site a new stats API key; the old one stops
// working at once.
func runSiteRotateKey(ctx context.Context, args []string) error {
	var publicID string
	fs := flag.NewFlagSet("site rotate-key", flag.ContinueOnError)
	fs.StringVar(&publicID, "public-id", "", "the site whose key to replace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if publicID == "" || fs.NArg() > 0 {
		return errors.New("usage: opsmantik site rotate-key --public-id ID")
	}
	pool, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	key, err := sites.RotateKey(ctx, pool, publicID)
	if errors.Is(err, sites.ErrNotFound) {
		return fmt.Errorf("no site has public id %q", publicID)
	}
	if err != nil {
		return err
	}
	s, err := sites.ByPublicID(ctx, pool, publicID)
	if err != nil {
		return err
	}
	return printJSON(siteWithKey{Site: s, APIKey: key})
}
