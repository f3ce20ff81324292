package main

import (
	"context"
	"flag"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/sites"
)

// adsFlagSet holds `site set`'s flags for where qualified leads go
// (docs/google-ads.md).
type adsFlagSet struct {
	fs                                            *flag.FlagSet
	customerID, action, ga4ID, ga4Secret, consent string
}

// adsFlags adds the Google Ads and GA4 flags to a `site set` flag set.
func adsFlags(fs *flag.FlagSet) *adsFlagSet {
	a := &adsFlagSet{fs: fs}
	fs.StringVar(&a.customerID, "google-ads-customer-id", "", "Google Ads account to upload conversions to (123-456-7890; '' clears)")
	fs.StringVar(&a.action, "google-ads-conversion-action", "", "its UPLOAD_CLICKS conversion action: name, numeric id or resource name ('' clears)")
	fs.StringVar(&a.ga4ID, "ga4-measurement-id", "", "GA4 web data stream to send qualify_lead to (G-XXXXXXXXXX; '' clears)")
	fs.StringVar(&a.ga4Secret, "ga4-api-secret", "", "that stream's Measurement Protocol API secret ('' clears)")
	fs.StringVar(&a.consent, "consent", "", "ad_user_data consent sent with uploads: granted, denied or unspecified")
	return a
}

// settings returns the changes the parsed flags ask for, and whether any did.
func (a *adsFlagSet) settings() (sites.AdsSettings, bool) {
	var c sites.AdsSettings
	given := false
	a.fs.Visit(func(f *flag.Flag) {
		p := map[string]**string{
			"google-ads-customer-id":       &c.GoogleAdsCustomerID,
			"google-ads-conversion-action": &c.GoogleAdsConversionAction,
			"ga4-measurement-id":           &c.GA4MeasurementID,
			"ga4-api-secret":               &c.GA4APISecret,
			"consent":                      &c.Consent,
		}[f.Name]
		if p != nil {
			v := f.Value.String()
			*p, given = &v, true
		}
	})
	return c, given
}

// apply stores the changes, if the flags asked for any, and returns the
// site's settings after them.
func (a *adsFlagSet) apply(ctx context.Context, pool *pgxpool.Pool, publicID string) (sites.Ads, error) {
	c, changed := a.settings()
	if !changed {
		all, err := sites.AdsByID(ctx, pool)
		if err != nil {
			return sites.Ads{}, err
		}
		s, err := sites.ByPublicID(ctx, pool, publicID)
		if err != nil {
			return sites.Ads{}, err
		}
		return all[s.ID], nil
	}
	return sites.SetAds(ctx, pool, publicID, c)
}

// siteWithAds is a site as `site list` and `site set` print it: the site's
// fields and, under "ads", where its qualified leads go (secrets masked).
type siteWithAds struct {
	sites.Site
	Ads sites.Ads `json:"ads"`
}

// withAds adds each site's Ads settings for printing.
func withAds(ctx context.Context, pool *pgxpool.Pool, list []sites.Site) ([]siteWithAds, error) {
	all, err := sites.AdsByID(ctx, pool)
	if err != nil {
		return nil, err
	}
	out := make([]siteWithAds, len(list))
	for i, s := range list {
		out[i] = siteWithAds{Site: s, Ads: all[s.ID]}
	}
	return out, nil
}
