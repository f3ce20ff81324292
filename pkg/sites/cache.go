package sites

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"
)

// Cache defaults: how many sites it holds and for how long (a new domain or
// setting takes effect within the TTL); unknown ids are remembered for a
// shorter time, so a site just added starts working soon.
const (
	DefaultCacheSize   = 10_000
	DefaultCacheTTL    = 30 * time.Second
	DefaultNegativeTTL = 5 * time.Second
)

// Cache looks sites up by public id for the ingest path: bounded (LRU),
// with expiry, a negative entry for unknown ids (so a flood of made-up ids
// costs one query per id per NegativeTTL, not one per request), and one
// database load at a time per id however many requests ask at once.
type Cache struct {
	pool     *pgxpool.Pool
	found    *expirable.LRU[string, Site]
	missing  *expirable.LRU[string, struct{}]
	origins  *expirable.LRU[string, bool]
	inflight singleflight.Group
}

// CacheOptions size the cache; zero values are the defaults.
type CacheOptions struct {
	Size        int
	TTL         time.Duration
	NegativeTTL time.Duration
}

// NewCache returns a cache over pool.
func NewCache(pool *pgxpool.Pool, o CacheOptions) *Cache {
	if o.Size <= 0 {
		o.Size = DefaultCacheSize
	}
	if o.TTL <= 0 {
		o.TTL = DefaultCacheTTL
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	return &Cache{
		pool:    pool,
		found:   expirable.NewLRU[string, Site](o.Size, nil, o.TTL),
		missing: expirable.NewLRU[string, struct{}](o.Size, nil, o.NegativeTTL),
		origins: expirable.NewLRU[string, bool](o.Size, nil, o.TTL),
	}
}

// Get returns the site with publicID, or ErrNotFound.
func (c *Cache) Get(ctx context.Context, publicID string) (Site, error) {
	if s, ok := c.found.Get(publicID); ok {
		return s, nil
	}
	if _, ok := c.missing.Get(publicID); ok {
		return Site{}, ErrNotFound
	}
	v, err, _ := c.inflight.Do("site/"+publicID, func() (any, error) {
		// Detached from one caller's cancellation: others share the load.
		s, err := ByPublicID(context.WithoutCancel(ctx), c.pool, publicID)
		switch {
		case err == nil:
			c.found.Add(publicID, s)
		case errors.Is(err, ErrNotFound):
			c.missing.Add(publicID, struct{}{})
		}
		return s, err
	})
	if err != nil {
		return Site{}, err
	}
	return v.(Site), nil
}

// allowsOriginSQL asks whether any site (or the site named) allows a host.
const allowsOriginSQL = `
SELECT EXISTS (
    SELECT 1 FROM sites, unnest(domains) AS d
    WHERE (@site::text = '' OR public_id = @site::text)
      AND (@host::text = d OR right(@host::text, length(d) + 1) = '.' || d)
)`

// AllowsOrigin reports whether the site publicID (or, when it is "", any
// site) allows requests from host: what a CORS preflight asks, which carries
// no body naming the site.
func (c *Cache) AllowsOrigin(ctx context.Context, publicID, host string) (bool, error) {
	if publicID != "" {
		s, err := c.Get(ctx, publicID)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return s.allowsHost(host), nil
	}
	if ok, found := c.origins.Get(host); found {
		return ok, nil
	}
	v, err, _ := c.inflight.Do("origin/"+host, func() (any, error) {
		var ok bool
		err := c.pool.QueryRow(context.WithoutCancel(ctx), allowsOriginSQL, pgx.NamedArgs{"site": "", "host": host}).Scan(&ok)
		if err == nil {
			c.origins.Add(host, ok)
		}
		return ok, err
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}
