package sites

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

func ptr(s string) *string { return &s }

func TestSetAdsStoresNormalisedSettingsAndMasksTheSecret(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	s, err := Add(ctx, pool, NewSite{PublicID: "shop", Domains: []string{"shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := SetAds(ctx, pool, "shop", AdsSettings{
		GoogleAdsCustomerID: ptr(" 123-456-7890 "), GoogleAdsConversionAction: ptr("Qualified lead"),
		GA4MeasurementID: ptr("g-abc1234"), GA4APISecret: ptr("s3cret-value"), Consent: ptr("GRANTED"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Ads{GoogleAdsCustomerID: "1234567890", GoogleAdsConversionAction: "Qualified lead", GA4MeasurementID: "G-ABC1234", GA4APISecret: "s3cret-value", Consent: "granted"}
	if got != want || !got.GoogleAds() || !got.GA4() {
		t.Fatalf("SetAds = %+v, want %+v", got, want)
	}
	all, err := AdsByID(ctx, pool)
	if err != nil || all[s.ID] != want {
		t.Fatalf("AdsByID = %+v %v", all, err)
	}
	j, _ := json.Marshal(all[s.ID])
	if strings.Contains(string(j), "s3cret") || !strings.Contains(string(j), `"ga4_api_secret":"[redacted]"`) {
		t.Fatalf("JSON shows the secret or hides that it is set: %s", j)
	}

	// Only the fields given change; '' clears a pair.
	got, err = SetAds(ctx, pool, "shop", AdsSettings{GA4MeasurementID: ptr(""), GA4APISecret: ptr("")})
	if err != nil || got.GA4() || got.GA4APISecret != "" || got.GoogleAdsCustomerID != "1234567890" || got.Consent != "granted" {
		t.Fatalf("clearing GA4: %+v %v", got, err)
	}
	j, _ = json.Marshal(got)
	if !strings.Contains(string(j), `"ga4_api_secret":""`) {
		t.Fatalf("an unset secret should show empty: %s", j)
	}
	var nulls int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sites WHERE ga4_measurement_id IS NULL AND ga4_api_secret IS NULL`).Scan(&nulls); err != nil || nulls != 1 {
		t.Fatalf("cleared values should be NULL: %d %v", nulls, err)
	}
}

func TestSetAdsRefusesBadValuesAndHalfDestinations(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := Add(ctx, pool, NewSite{PublicID: "shop", Domains: []string{"shop.example"}}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", MaxConversionActionLength)
	if _, err := SetAds(ctx, pool, "shop", AdsSettings{GoogleAdsCustomerID: ptr("1234567890"), GoogleAdsConversionAction: ptr(long)}); err != nil {
		t.Fatalf("an action name of exactly %d characters: %v", MaxConversionActionLength, err)
	}
	secret := strings.Repeat("s", MaxGA4SecretLength)
	if _, err := SetAds(ctx, pool, "shop", AdsSettings{GA4MeasurementID: ptr("G-ABCD"), GA4APISecret: ptr(secret)}); err != nil {
		t.Fatalf("a secret of exactly %d characters, a 4-character measurement id: %v", MaxGA4SecretLength, err)
	}
	cases := []struct {
		name string
		c    AdsSettings
		want string
	}{
		{"nine digits", AdsSettings{GoogleAdsCustomerID: ptr("123-456-789")}, "10 digits"},
		{"eleven digits", AdsSettings{GoogleAdsCustomerID: ptr("12345678901")}, "10 digits"},
		{"letters", AdsSettings{GoogleAdsCustomerID: ptr("123456789x")}, "10 digits"},
		{"action too long", AdsSettings{GoogleAdsConversionAction: ptr(long + "a")}, "at most 256"},
		{"action with a line break", AdsSettings{GoogleAdsConversionAction: ptr("a\nb")}, "no line breaks"},
		{"measurement id", AdsSettings{GA4MeasurementID: ptr("UA-1234")}, "G-"},
		{"measurement id too short", AdsSettings{GA4MeasurementID: ptr("G-ABC")}, "G-"},
		{"measurement id too long", AdsSettings{GA4MeasurementID: ptr("G-" + strings.Repeat("A", 21))}, "G-"},
		{"secret too long", AdsSettings{GA4APISecret: ptr(secret + "s")}, "at most 256"},
		{"secret with a space", AdsSettings{GA4APISecret: ptr("a b")}, "no spaces"},
		{"consent", AdsSettings{Consent: ptr("yes")}, "granted, denied or unspecified"},
		{"consent cleared", AdsSettings{Consent: ptr("")}, "granted, denied or unspecified"},
		{"customer id without action", AdsSettings{GoogleAdsConversionAction: ptr("")}, "needs both"},
		{"action without customer id", AdsSettings{GoogleAdsCustomerID: ptr("")}, "needs both"},
		{"secret without measurement id", AdsSettings{GA4MeasurementID: ptr("")}, "needs both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := SetAds(ctx, pool, "shop", c.c)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	all, err := AdsByID(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.GoogleAdsConversionAction != long || a.GA4MeasurementID != "G-ABCD" || a.Consent != ConsentUnspecified {
			t.Fatalf("a refused change was stored: %+v", a)
		}
	}
	if _, err := SetAds(ctx, pool, "nope", AdsSettings{Consent: ptr("denied")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown site: %v", err)
	}
}

// FuzzAdsSettings: whatever the flags say, a change is refused with a
// reason or gives values the database's checks accept.
func FuzzAdsSettings(f *testing.F) {
	for _, s := range [][5]string{
		{"123-456-7890", "Qualified lead", "G-ABC1234", "secret", "granted"},
		{"", "", "", "", "unspecified"},
		{"1234567890", "customers/1234567890/conversionActions/987", "g-abcd", "s", "DENIED"},
		{"12-34", "a\nb", "G-", "a b", "yes"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	customer := regexp.MustCompile(`^[0-9]{10}$`)
	f.Fuzz(func(t *testing.T, id, action, mid, secret, consent string) {
		a, err := AdsSettings{GoogleAdsCustomerID: &id, GoogleAdsConversionAction: &action, GA4MeasurementID: &mid, GA4APISecret: &secret, Consent: &consent}.apply(Ads{Consent: ConsentUnspecified})
		if err != nil {
			return
		}
		if (a.GoogleAdsCustomerID != "" && !customer.MatchString(a.GoogleAdsCustomerID)) ||
			(a.GA4MeasurementID != "" && !measurementIDPattern.MatchString(a.GA4MeasurementID)) ||
			(a.Consent != ConsentGranted && a.Consent != ConsentDenied && a.Consent != ConsentUnspecified) ||
			a.GoogleAds() != (a.GoogleAdsCustomerID != "") || a.GA4() != (a.GA4MeasurementID != "") ||
			len(a.GoogleAdsConversionAction) > MaxConversionActionLength || len(a.GA4APISecret) > MaxGA4SecretLength {
			t.Fatalf("accepted %+v from %q %q %q %q %q", a, id, action, mid, secret, consent)
		}
	})
}

// TestConvertsFollowsTheDestinations: a site converts (ingest looks for
// qualified leads) exactly when Google Ads or GA4 is configured in full.
func TestConvertsFollowsTheDestinations(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	s, err := Add(ctx, pool, NewSite{PublicID: "shop", Domains: []string{"shop.example"}})
	if err != nil || s.Converts {
		t.Fatalf("a new site: converts %v (%v), want false", s.Converts, err)
	}
	steps := []struct {
		name string
		set  AdsSettings
		want bool
	}{
		{"GA4", AdsSettings{GA4MeasurementID: ptr("G-ABC1234"), GA4APISecret: ptr("secret")}, true},
		{"GA4 and Google Ads", AdsSettings{GoogleAdsCustomerID: ptr("1234567890"), GoogleAdsConversionAction: ptr("Lead")}, true},
		{"Google Ads only", AdsSettings{GA4MeasurementID: ptr(""), GA4APISecret: ptr("")}, true},
		{"none", AdsSettings{GoogleAdsCustomerID: ptr(""), GoogleAdsConversionAction: ptr("")}, false},
	}
	for _, st := range steps {
		if _, err := SetAds(ctx, pool, "shop", st.set); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := ByPublicID(ctx, pool, "shop")
		if err != nil || got.Converts != st.want {
			t.Fatalf("%s: converts %v (%v), want %v", st.name, got.Converts, err, st.want)
		}
	}
}
