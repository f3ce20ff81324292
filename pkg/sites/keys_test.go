package sites_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s, key, err := sites.AddWithKey(ctx, pool, sites.NewSite{PublicID: "shop", Domains: []string{"shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, sites.APIKeyPrefix) || len(key) != len(sites.APIKeyPrefix)+43 {
		t.Fatalf("key %q", key)
	}
	if _, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "keyless", Domains: []string{"k.example"}}); err != nil {
		t.Fatal(err)
	}
	got, err := sites.Authenticate(ctx, pool, "shop", key)
	if err != nil || got.ID != s.ID || got.PublicID != "shop" || got.Timezone != "UTC" {
		t.Fatalf("authenticate: %+v, %v", got, err)
	}
	for _, c := range []struct{ site, key string }{
		{"shop", key + "x"}, {"shop", strings.ToUpper(key)}, {"shop", ""}, {"nope", key}, {"", key},
		{"keyless", key}, {"keyless", ""}, {"shop", sites.HashAPIKey(key)},
	} {
		if _, err := sites.Authenticate(ctx, pool, c.site, c.key); !errors.Is(err, sites.ErrUnauthorized) {
			t.Errorf("site %q key %q: %v, want unauthorized", c.site, c.key, err)
		}
	}
	newKey, err := sites.RotateKey(ctx, pool, "shop")
	if err != nil || newKey == key {
		t.Fatalf("rotate: %q, %v", newKey, err)
	}
	if _, err := sites.Authenticate(ctx, pool, "shop", key); !errors.Is(err, sites.ErrUnauthorized) {
		t.Errorf("the old key after rotation: %v", err)
	}
	if _, err := sites.Authenticate(ctx, pool, "shop", newKey); err != nil {
		t.Errorf("the new key: %v", err)
	}
	if _, err := sites.RotateKey(ctx, pool, "nope"); !errors.Is(err, sites.ErrNotFound) {
		t.Errorf("rotating an unknown site: %v", err)
	}
	// Keys differ every time and the stored value is the hash.
	seen := map[string]bool{}
	for range 100 {
		k, h, err := sites.NewAPIKey()
		if err != nil || seen[k] || h != sites.HashAPIKey(k) || len(h) != 64 {
			t.Fatalf("key %q hash %q %v", k, h, err)
		}
		seen[k] = true
	}
}
