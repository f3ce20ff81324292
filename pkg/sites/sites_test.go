package sites

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

func TestAddRefusesDuplicatesAndUnknownTimeZones(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := Add(ctx, pool, NewSite{PublicID: "shop", Domains: []string{"Shop.Example."}, Timezone: "Europe/Istanbul"}); err != nil {
		t.Fatal(err)
	}
	_, err := Add(ctx, pool, NewSite{PublicID: "shop", Domains: []string{"other.example"}})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `"shop" already exists`) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, tz := range []string{"Local", "Mars/Olympus", "utc+3"} {
		_, err := Add(ctx, pool, NewSite{PublicID: "tz", Domains: []string{"tz.example"}, Timezone: tz})
		if err == nil || !strings.Contains(err.Error(), "timezone") {
			t.Fatalf("timezone %q accepted: %v", tz, err)
		}
	}
	// The database refuses what Go might let through, whoever writes the row.
	_, err = pool.Exec(ctx, `INSERT INTO sites (public_id, timezone) VALUES ('raw', 'Local')`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrcode.InvalidParameterValue {
		t.Fatalf("trigger: %v", err)
	}
	if msg := refused(NewSite{Timezone: "Local"}, err).Error(); !strings.Contains(msg, "not a time zone PostgreSQL knows") {
		t.Fatalf("refusal reads %q", msg)
	}
	if _, err := pool.Exec(ctx, `UPDATE sites SET timezone = 'Nowhere/Land' WHERE public_id = 'shop'`); err == nil {
		t.Fatal("an update to an unknown time zone was accepted")
	}
	s, err := ByPublicID(ctx, pool, "shop")
	if err != nil || s.Timezone != "Europe/Istanbul" || s.Domains[0] != "shop.example" {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestCache(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	c := NewCache(pool, CacheOptions{})
	if _, err := c.Get(ctx, "later"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown site: %v", err)
	}
	if _, err := Add(ctx, pool, NewSite{PublicID: "later", Domains: []string{"later.example"}}); err != nil {
		t.Fatal(err)
	}
	// The negative entry holds for its TTL: a flood of unknown ids does not
	// reach the database on every request.
	if _, err := c.Get(ctx, "later"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("negative entry not used: %v", err)
	}
	// Once the negative entry has expired (here: a cache whose entries live
	// a microsecond), the site is read again.
	fresh := NewCache(pool, CacheOptions{TTL: time.Microsecond, NegativeTTL: time.Microsecond})
	if _, err := fresh.Get(ctx, "later-unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	s, err := fresh.Get(ctx, "later")
	if err != nil || s.PublicID != "later" {
		t.Fatalf("%+v %v", s, err)
	}
	// Positive entries are reused: a changed domain shows only after the TTL.
	if _, err := pool.Exec(ctx, `UPDATE sites SET domains = '{changed.example}' WHERE public_id = 'later'`); err != nil {
		t.Fatal(err)
	}
	warm := NewCache(pool, CacheOptions{})
	if _, err := warm.Get(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE sites SET domains = '{again.example}' WHERE public_id = 'later'`); err != nil {
		t.Fatal(err)
	}
	if s, _ := warm.Get(ctx, "later"); s.Domains[0] != "changed.example" {
		t.Fatalf("cached entry not reused: %v", s.Domains)
	}
	// Bounded: a cache of two holds two sites.
	small := NewCache(pool, CacheOptions{Size: 2})
	for _, id := range []string{"a", "b", "c", "d"} {
		_, _ = small.Get(ctx, id)
	}
	if n := small.missing.Len(); n != 2 {
		t.Fatalf("negative entries %d, want 2", n)
	}
	// Concurrent lookups all get the answer.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := NewCache(pool, CacheOptions{}).Get(ctx, "later"); err != nil || s.PublicID != "later" {
				t.Errorf("%+v %v", s, err)
			}
		}()
	}
	wg.Wait()
	// Preflights: per site, and for any site when none is named.
	for _, q := range []struct {
		site, host string
		want       bool
	}{{"later", "again.example", true}, {"later", "www.again.example", true}, {"later", "evil.example", false},
		{"", "again.example", true}, {"", "nobody.example", false}, {"nope", "again.example", false}} {
		got, err := fresh.AllowsOrigin(ctx, q.site, q.host)
		if err != nil || got != q.want {
			t.Fatalf("AllowsOrigin(%q, %q) = %v, %v; want %v", q.site, q.host, got, err, q.want)
		}
	}
}
