package sites

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// Ads is where a site's qualified leads go (sql/0006): a Google Ads account
// and conversion action, optionally a GA4 web data stream, and the consent
// sent with each upload. The GA4 API secret prints as "[redacted]".
type Ads struct {
	GoogleAdsCustomerID       string        `json:"google_ads_customer_id"`
	GoogleAdsConversionAction string        `json:"google_ads_conversion_action"`
	GA4MeasurementID          string        `json:"ga4_measurement_id"`
	GA4APISecret              config.Secret `json:"ga4_api_secret"`
	Consent                   string        `json:"consent"`
}

// GoogleAds reports whether conversions go to Google Ads.
func (a Ads) GoogleAds() bool {
	return a.GoogleAdsCustomerID != "" && a.GoogleAdsConversionAction != ""
}

// GA4 reports whether conversions go to GA4.
func (a Ads) GA4() bool { return a.GA4MeasurementID != "" && a.GA4APISecret != "" }

// AdsSettings are the changes `opsmantik site set` makes. A nil field is
// left as it is; a pointer to "" clears the value (consent cannot be cleared).
type AdsSettings struct {
	GoogleAdsCustomerID       *string
	GoogleAdsConversionAction *string
	GA4MeasurementID          *string
	GA4APISecret              *string
	Consent                   *string
}

// Consent values, as sites.ads_consent stores them.
const (
	ConsentGranted     = "granted"
	ConsentDenied      = "denied"
	ConsentUnspecified = "unspecified"
)

// Limits of the settings. Google Ads action names are at most 100 characters;
// a resource name is shorter than 64. GA4 API secrets are about 22.
const (
	MaxConversionActionLength = 256
	MaxGA4SecretLength        = 256
)

var measurementIDPattern = regexp.MustCompile(`^G-[A-Z0-9]{4,20}$`)

// NormalizeCustomerID accepts a Google Ads customer id with or without
// dashes ("123-456-7890") and returns its ten digits.
func NormalizeCustomerID(s string) (string, error) {
	id := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	if len(id) != 10 || strings.IndexFunc(id, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return "", fmt.Errorf("google ads customer id %q: want 10 digits, dashes allowed (123-456-7890)", s)
	}
	return id, nil
}

// apply merges the changes into a and checks the result.
func (c AdsSettings) apply(a Ads) (Ads, error) {
	if c.GoogleAdsCustomerID != nil {
		a.GoogleAdsCustomerID = ""
		if v := strings.TrimSpace(*c.GoogleAdsCustomerID); v != "" {
			id, err := NormalizeCustomerID(v)
			if err != nil {
				return a, err
			}
			a.GoogleAdsCustomerID = id
		}
	}
	if c.GoogleAdsConversionAction != nil {
		v := strings.TrimSpace(*c.GoogleAdsConversionAction)
		if len(v) > MaxConversionActionLength || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return a, fmt.Errorf("google ads conversion action: give its name, numeric id or resource name (at most %d characters, no line breaks)", MaxConversionActionLength)
		}
		a.GoogleAdsConversionAction = v
	}
	if c.GA4MeasurementID != nil {
		v := strings.ToUpper(strings.TrimSpace(*c.GA4MeasurementID))
		if v != "" && !measurementIDPattern.MatchString(v) {
			return a, fmt.Errorf("ga4 measurement id %q: want G- and 4 to 20 letters or digits (G-XXXXXXXXXX)", *c.GA4MeasurementID)
		}
		a.GA4MeasurementID = v
	}
	if c.GA4APISecret != nil {
		v := strings.TrimSpace(*c.GA4APISecret)
		if len(v) > MaxGA4SecretLength || strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return a, fmt.Errorf("ga4 api secret: at most %d characters, no spaces", MaxGA4SecretLength)
		}
		a.GA4APISecret = config.Secret(v)
	}
	if c.Consent != nil {
		v := strings.ToLower(strings.TrimSpace(*c.Consent))
		switch v {
		case ConsentGranted, ConsentDenied, ConsentUnspecified:
			a.Consent = v
		default:
			return a, fmt.Errorf("consent %q: want granted, denied or unspecified", *c.Consent)
		}
	}
	// Half a destination would silently send nothing: refuse it.
	if (a.GoogleAdsCustomerID == "") != (a.GoogleAdsConversionAction == "") {
		return a, errors.New("google ads needs both --google-ads-customer-id and --google-ads-conversion-action (clear both with '')")
	}
	if (a.GA4MeasurementID == "") != (a.GA4APISecret == "") {
		return a, errors.New("ga4 needs both --ga4-measurement-id and --ga4-api-secret (clear both with '')")
	}
	return a, nil
}

const adsColumns = `coalesce(google_ads_customer_id, ''), coalesce(google_ads_conversion_action, ''),
	coalesce(ga4_measurement_id, ''), coalesce(ga4_api_secret, ''), ads_consent`

func scanAds(row pgx.Row, a *Ads) error {
	var secret string
	err := row.Scan(&a.GoogleAdsCustomerID, &a.GoogleAdsConversionAction, &a.GA4MeasurementID, &secret, &a.Consent)
	a.GA4APISecret = config.Secret(secret)
	return err
}

// SetAds changes where a site's qualified leads go. Conversions already in
// the outbox keep their destination; sessions that qualified before a
// destination was configured are picked up by their next batch or by the
// conversion sweep (pkg/conversions).
func SetAds(ctx context.Context, pool *pgxpool.Pool, publicID string, c AdsSettings) (Ads, error) {
	var out Ads
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var cur Ads
		err := scanAds(tx.QueryRow(ctx, `SELECT `+adsColumns+` FROM sites WHERE public_id = $1 FOR UPDATE`, publicID), &cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if out, err = c.apply(cur); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE sites SET google_ads_customer_id = nullif($2, ''), google_ads_conversion_action = nullif($3, ''),
			                 ga4_measurement_id = nullif($4, ''), ga4_api_secret = nullif($5, ''), ads_consent = $6
			WHERE public_id = $1`,
			publicID, out.GoogleAdsCustomerID, out.GoogleAdsConversionAction, out.GA4MeasurementID, string(out.GA4APISecret), out.Consent)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Ads{}, err
		}
		return Ads{}, fmt.Errorf("set ads settings of site %s: %w", publicID, err)
	}
	return out, nil
}

// AdsByID returns every site's Ads settings by site id.
func AdsByID(ctx context.Context, pool *pgxpool.Pool) (map[int64]Ads, error) {
	rows, err := pool.Query(ctx, `SELECT id, `+adsColumns+` FROM sites`)
	if err != nil {
		return nil, fmt.Errorf("list ads settings: %w", err)
	}
	defer rows.Close()
	out := map[int64]Ads{}
	for rows.Next() {
		var id int64
		var a Ads
		var secret string
		if err := rows.Scan(&id, &a.GoogleAdsCustomerID, &a.GoogleAdsConversionAction, &a.GA4MeasurementID, &secret, &a.Consent); err != nil {
			return nil, err
		}
		a.GA4APISecret = config.Secret(secret)
		out[id] = a
	}
	return out, rows.Err()
}
