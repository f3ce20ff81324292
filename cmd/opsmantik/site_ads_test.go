package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

func TestSiteSetStoresWhereLeadsGoAndListMasksTheSecret(t *testing.T) {
	name := freshDatabase(t)
	// Migrations over a direct connection; the site commands as deployed
	// (through the pooler in pooler mode).
	if _, stderr, err := opsmantik(t, []string{"DATABASE_URL=" + dbtest.DirectURL(name)}, "migrate"); err != nil {
		t.Fatalf("migrate: %v %s", err, stderr)
	}
	env := []string{"DATABASE_URL=" + dbtest.URL(name)}
	if _, stderr, err := opsmantik(t, env, "site", "add", "--public-id", "shop1", "--domain", "shop.example"); err != nil {
		t.Fatalf("site add: %v %s", err, stderr)
	}
	out, stderr, err := opsmantik(t, env, "site", "set", "--public-id", "shop1",
		"--google-ads-customer-id", "123-456-7890", "--google-ads-conversion-action", "Qualified lead",
		"--ga4-measurement-id", "G-TEST1234", "--ga4-api-secret", "mp-s3cret", "--consent", "granted")
	if err != nil {
		t.Fatalf("site set: %v %s", err, stderr)
	}
	var set struct {
		PublicID string            `json:"public_id"`
		Ads      map[string]string `json:"ads"`
	}
	if err := json.Unmarshal([]byte(out), &set); err != nil {
		t.Fatalf("site set printed %q", out)
	}
	want := map[string]string{
		"google_ads_customer_id": "1234567890", "google_ads_conversion_action": "Qualified lead",
		"ga4_measurement_id": "G-TEST1234", "ga4_api_secret": "[redacted]", "consent": "granted",
	}
	if set.PublicID != "shop1" || len(set.Ads) != len(want) {
		t.Fatalf("site set = %s", out)
	}
	for k, v := range want {
		if set.Ads[k] != v {
			t.Errorf("ads.%s = %q, want %q", k, set.Ads[k], v)
		}
	}
	// Only the flags given change.
	if _, stderr, err := opsmantik(t, env, "site", "set", "--public-id", "shop1", "--consent", "denied"); err != nil {
		t.Fatalf("site set --consent: %v %s", err, stderr)
	}
	out, _, err = opsmantik(t, env, "site", "list")
	var list []struct {
		Ads map[string]string `json:"ads"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("site list: %v %s", err, out)
	}
	if a := list[0].Ads; a["consent"] != "denied" || a["google_ads_customer_id"] != "1234567890" || a["ga4_api_secret"] != "[redacted]" {
		t.Fatalf("site list ads = %v", a)
	}
	if strings.Contains(out, "mp-s3cret") {
		t.Fatalf("site list shows the GA4 secret:\n%s", out)
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"site", "set", "--google-ads-customer-id", "1234567890"}, "--public-id is required"},
		{[]string{"site", "set", "--public-id", "nope", "--consent", "granted"}, `no site has public id "nope"`},
		{[]string{"site", "set", "--public-id", "shop1", "--google-ads-customer-id", "12345"}, "10 digits"},
		{[]string{"site", "set", "--public-id", "shop1", "--google-ads-conversion-action", ""}, "needs both"},
		{[]string{"site", "set", "--public-id", "shop1", "--consent", "maybe"}, "granted, denied or unspecified"},
		{[]string{"site", "set", "--public-id", "shop1", "extra"}, "unexpected argument"},
	}
	for _, b := range bad {
		_, stderr, err := opsmantik(t, env, b.args...)
		if err == nil || !strings.Contains(stderr, b.want) {
			t.Errorf("%v: err %v, stderr %q (want %q)", b.args, err, stderr, b.want)
		}
	}
}
