package sites

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Changes are the fields `opsmantik site set` changes; nil leaves a field
// as it is.
type Changes struct {
	Name          *string
	Domains       []string // nil: unchanged; otherwise the new list (at least one)
	Timezone      *string
	Currency      *string
	LeadThreshold *int
}

// Empty reports whether nothing would change.
func (c Changes) Empty() bool {
	return c.Name == nil && c.Domains == nil && c.Timezone == nil && c.Currency == nil && c.LeadThreshold == nil
}

// Update applies c to the site with public id publicID and returns it as
// stored. The merged site is validated as `site add` validates a new one
// (NewSite.Validate), and the lead threshold must be 0-100.
func Update(ctx context.Context, pool *pgxpool.Pool, publicID string, c Changes) (Site, error) {
	if c.Empty() {
		return Site{}, errors.New("nothing to change: give --name, --domain, --timezone, --currency or --lead-threshold")
	}
	if c.LeadThreshold != nil && (*c.LeadThreshold < 0 || *c.LeadThreshold > 100) {
		return Site{}, fmt.Errorf("lead threshold %d: use 0-100 (a session is a qualified lead when its score is greater)", *c.LeadThreshold)
	}
	if c.Domains != nil && len(c.Domains) == 0 {
		return Site{}, errors.New("at least one --domain is required")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Site{}, fmt.Errorf("update site %s: %w", publicID, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	cur, err := scanSite(tx.QueryRow(ctx, `SELECT `+siteColumns+` FROM sites WHERE public_id = $1 FOR UPDATE`, publicID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Site{}, ErrNotFound
	}
	if err != nil {
		return Site{}, fmt.Errorf("update site %s: %w", publicID, err)
	}
	n := NewSite{PublicID: cur.PublicID, Name: cur.Name, Domains: cur.Domains, Timezone: cur.Timezone, Currency: cur.Currency}
	if c.Name != nil {
		n.Name = *c.Name
	}
	if c.Domains != nil {
		n.Domains = append([]string(nil), c.Domains...)
	}
	if c.Timezone != nil {
		n.Timezone = *c.Timezone
	}
	if c.Currency != nil {
		n.Currency = *c.Currency
	}
	threshold := cur.LeadThreshold
	if c.LeadThreshold != nil {
		threshold = *c.LeadThreshold
	}
	if err := n.Validate(); err != nil {
		return Site{}, err
	}
	s, err := scanSite(tx.QueryRow(ctx, `
		UPDATE sites SET name = $2, domains = $3::text[], timezone = $4, currency = $5, lead_threshold = $6::smallint
		WHERE id = $1
		RETURNING `+siteColumns, cur.ID, n.Name, n.Domains, n.Timezone, n.Currency, threshold))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "22023" { // the time zone trigger (sql/0003)
			return Site{}, fmt.Errorf("timezone %q: %s", n.Timezone, pgErr.Message)
		}
		return Site{}, fmt.Errorf("update site %s: %w", publicID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Site{}, fmt.Errorf("update site %s: %w", publicID, err)
	}
	return s, nil
}
