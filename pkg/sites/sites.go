// Package sites stores the tracked websites: their public ids, allowed
// domains, time zone, currency and lead threshold.
package sites

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Site is one tracked website.
type Site struct {
	ID            int64     `json:"id"`
	PublicID      string    `json:"public_id"`
	Name          string    `json:"name"`
	Domains       []string  `json:"domains"`
	Timezone      string    `json:"timezone"`
	Currency      string    `json:"currency"`
	LeadThreshold int       `json:"lead_threshold"`
	CreatedAt     time.Time `json:"created_at"`
	// Converts is true when the site has a conversion destination (Google
	// Ads or GA4, sql/0006) configured: only then does ingest look for
	// qualified leads to put in the outbox.
	Converts bool `json:"-"`
}

// ErrNotFound is returned when no site has the public id asked for.
var ErrNotFound = errors.New("site not found")

var (
	publicIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	domainPattern   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// NewSite is what `opsmantik site add` asks for.
type NewSite struct {
	PublicID string
	Name     string
	Domains  []string
	Timezone string
	Currency string
}

// Validate checks and normalises the fields (lower-case domains, defaults).
func (n *NewSite) Validate() error {
	if !publicIDPattern.MatchString(n.PublicID) {
		return fmt.Errorf("public id %q: use 1-64 letters, digits, '-' or '_'", n.PublicID)
	}
	if len(n.Domains) == 0 {
		return errors.New("at least one --domain is required")
	}
	for i, d := range n.Domains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if !domainPattern.MatchString(d) {
			return fmt.Errorf("domain %q: give a host name such as shop.example (no scheme, port or path)", n.Domains[i])
		}
		n.Domains[i] = d
	}
	if n.Timezone == "" {
		n.Timezone = "UTC"
	}
	// Go knows names PostgreSQL does not ("Local"); the database has the
	// last word (a trigger checks pg_timezone_names), this catches the
	// obvious mistakes before connecting.
	if _, err := time.LoadLocation(n.Timezone); err != nil || n.Timezone == "Local" {
		return fmt.Errorf("timezone %q: not an IANA time zone (e.g. Europe/Istanbul)", n.Timezone)
	}
	if n.Currency == "" {
		n.Currency = "USD"
	}
	n.Currency = strings.ToUpper(n.Currency)
	if !currencyPattern.MatchString(n.Currency) {
		return fmt.Errorf("currency %q: use an ISO 4217 code such as EUR", n.Currency)
	}
	return nil
}

const siteColumns = `id, public_id, name, domains, timezone, currency, lead_threshold, created_at,
	(google_ads_customer_id IS NOT NULL AND google_ads_conversion_action IS NOT NULL)
	OR (ga4_measurement_id IS NOT NULL AND ga4_api_secret IS NOT NULL)`

func scanSite(row pgx.Row) (Site, error) {
	var s Site
	err := row.Scan(&s.ID, &s.PublicID, &s.Name, &s.Domains, &s.Timezone, &s.Currency, &s.LeadThreshold, &s.CreatedAt, &s.Converts)
	return s, err
}

// Add creates a site.
func Add(ctx context.Context, pool *pgxpool.Pool, n NewSite) (Site, error) {
	if err := n.Validate(); err != nil {
		return Site{}, err
	}
	s, err := scanSite(pool.QueryRow(ctx, `
		INSERT INTO sites (public_id, name, domains, timezone, currency)
		VALUES ($1, $2, $3, $4, $5)
		RETURNING `+siteColumns, n.PublicID, n.Name, n.Domains, n.Timezone, n.Currency))
	if err != nil {
		return Site{}, refused(n, err)
	}
	return s, nil
}

// ErrExists is returned when a site with the public id already exists.
var ErrExists = errors.New("site exists")

// refused turns the database's refusal of a site into the operator's words:
// a duplicate public id (unique_violation) or a time zone PostgreSQL does
// not know (the trigger's invalid_parameter_value).
func refused(n NewSite, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.UniqueViolation:
			return fmt.Errorf("a site with public id %q already exists: %w", n.PublicID, ErrExists)
		case pgerrcode.InvalidParameterValue:
			return fmt.Errorf("timezone %q: not a time zone PostgreSQL knows (see pg_timezone_names)", n.Timezone)
		}
	}
	return fmt.Errorf("add site: %w", err)
}

// Ensure creates the site when no site has its public id, and returns the
// stored site either way.
func Ensure(ctx context.Context, pool *pgxpool.Pool, n NewSite) (Site, error) {
	if err := n.Validate(); err != nil {
		return Site{}, err
	}
	_, err := pool.Exec(ctx, `
		INSERT INTO sites (public_id, name, domains, timezone, currency)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (public_id) DO NOTHING`, n.PublicID, n.Name, n.Domains, n.Timezone, n.Currency)
	if err != nil {
		return Site{}, refused(n, err)
	}
	return ByPublicID(ctx, pool, n.PublicID)
}

// ByPublicID looks a site up by the id the tracker sends.
func ByPublicID(ctx context.Context, pool *pgxpool.Pool, publicID string) (Site, error) {
	s, err := scanSite(pool.QueryRow(ctx, `SELECT `+siteColumns+` FROM sites WHERE public_id = $1`, publicID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Site{}, ErrNotFound
	}
	if err != nil {
		return Site{}, fmt.Errorf("look up site %s: %w", publicID, err)
	}
	return s, nil
}

// List returns every site, oldest first.
func List(ctx context.Context, pool *pgxpool.Pool) ([]Site, error) {
	rows, err := pool.Query(ctx, `SELECT `+siteColumns+` FROM sites ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Site, error) { return scanSite(r) })
}

// AllowsOrigin reports whether a request from origin (scheme://host[:port])
// may write to the site: its host must be one of the site's domains or a
// subdomain of one.
func (s Site) AllowsOrigin(origin string) bool {
	return s.allowsHost(OriginHost(origin))
}

func (s Site) allowsHost(host string) bool {
	if host == "" {
		return false
	}
	for _, d := range s.Domains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// OriginHost returns the lower-case host of an Origin header value, without
// port, or "" when it is not an http(s) origin.
func OriginHost(origin string) string {
	rest, ok := strings.CutPrefix(origin, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(origin, "http://")
	}
	if !ok || rest == "" || strings.ContainsAny(rest, "/?#@") {
		return ""
	}
	if strings.HasPrefix(rest, "[") { // IPv6 literal
		end := strings.Index(rest, "]")
		if end < 0 {
			return ""
		}
		return strings.ToLower(rest[1:end])
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return strings.ToLower(rest)
}
