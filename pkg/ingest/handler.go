// Package ingest is the server half of the tracker protocol (shared/docs/PROTOCOL.md):
// it parses and validates batches, stores sessions and events idempotently,
// scores each session as a lead and counts what it did for the error rate.
package ingest

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
)

// Handler serves the sync endpoint: POST ingest, GET health, OPTIONS preflight.
type Handler struct {
	pool *pgxpool.Pool
}

// New returns the sync handler over pool.
func New(pool *pgxpool.Pool) *Handler {
	return &Handler{pool: pool}
}

// FromConfig opens the database and builds the handler (functions/sync).
func FromConfig(ctx context.Context, cfg *config.Sync) (http.Handler, error) {
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, err
	}
	return New(pool), nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not yet", http.StatusNotImplemented)
}
