package sites_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

func ptr[T any](v T) *T { return &v }

func TestUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	before, err := sites.Add(ctx, pool, sites.NewSite{PublicID: "shop", Name: "Shop", Domains: []string{"shop.example"}, Timezone: "Europe/Istanbul", Currency: "TRY"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sites.Update(ctx, pool, "shop", sites.Changes{Timezone: ptr("America/Santiago")})
	if err != nil || s.Timezone != "America/Santiago" || s.Name != "Shop" || s.Currency != "TRY" || s.LeadThreshold != 80 ||
		!slices.Equal(s.Domains, []string{"shop.example"}) || s.ID != before.ID {
		t.Fatalf("time zone only: %+v, %v", s, err)
	}
	s, err = sites.Update(ctx, pool, "shop", sites.Changes{Name: ptr(""), Domains: []string{"Shop.Example.", "www.shop.example"}, Currency: ptr("eur"), LeadThreshold: ptr(0)})
	if err != nil || s.Name != "" || s.Currency != "EUR" || s.LeadThreshold != 0 || !slices.Equal(s.Domains, []string{"shop.example", "www.shop.example"}) ||
		s.Timezone != "America/Santiago" {
		t.Fatalf("the rest: %+v, %v", s, err)
	}
	if s, err = sites.Update(ctx, pool, "shop", sites.Changes{LeadThreshold: ptr(100)}); err != nil || s.LeadThreshold != 100 {
		t.Fatalf("threshold 100: %+v, %v", s, err)
	}
	stored, err := sites.ByPublicID(ctx, pool, "shop")
	if err != nil || stored.LeadThreshold != 100 || stored.Currency != "EUR" {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	for _, c := range []struct {
		name    string
		changes sites.Changes
		want    string
	}{
		{"nothing", sites.Changes{}, "nothing to change"},
		{"threshold below", sites.Changes{LeadThreshold: ptr(-1)}, "lead threshold -1"},
		{"threshold above", sites.Changes{LeadThreshold: ptr(101)}, "lead threshold 101"},
		{"no domains", sites.Changes{Domains: []string{}}, "--domain"},
		{"a URL as domain", sites.Changes{Domains: []string{"https://shop.example/"}}, "domain"},
		{"a time zone nobody knows", sites.Changes{Timezone: ptr("Mars/Olympus")}, "timezone"},
		{"a currency", sites.Changes{Currency: ptr("EURO")}, "currency"},
	} {
		if _, err := sites.Update(ctx, pool, "shop", c.changes); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	if after, _ := sites.ByPublicID(ctx, pool, "shop"); !slices.Equal(after.Domains, stored.Domains) || after.Timezone != stored.Timezone || after.LeadThreshold != 100 {
		t.Errorf("a refused change changed the site: %+v", after)
	}
	if _, err := sites.Update(ctx, pool, "nope", sites.Changes{Name: ptr("x")}); !errors.Is(err, sites.ErrNotFound) {
		t.Errorf("unknown site: %v", err)
	}
}
