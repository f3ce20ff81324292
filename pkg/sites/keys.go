package sites

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Site API keys authenticate the stats endpoint (STATS-API.md, "Site API
// keys"). A key is 32 random bytes, so a plain SHA-256 of it is enough to
// store: there is nothing to guess that a slow hash would protect. Only the
// hash is stored (sites.stats_api_key_hash); the key is shown once.

// APIKeyPrefix starts every key, so that a leaked one is recognisable.
const APIKeyPrefix = "omk_"

// ErrUnauthorized is returned for a wrong or missing key and for an unknown
// site alike: the caller cannot tell which.
var ErrUnauthorized = errors.New("unauthorized")

// NewAPIKey returns a fresh key and the hash to store for it.
func NewAPIKey() (key, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("make API key: %w", err)
	}
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashAPIKey(key), nil
}

// HashAPIKey is what is stored for key: its SHA-256, hex.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// RotateKey gives the site a new API key and returns it; the old key stops
// working with the commit.
func RotateKey(ctx context.Context, pool *pgxpool.Pool, publicID string) (string, error) {
	key, hash, err := NewAPIKey()
	if err != nil {
		return "", err
	}
	tag, err := pool.Exec(ctx, `UPDATE sites SET stats_api_key_hash = $2 WHERE public_id = $1`, publicID, hash)
	if err != nil {
		return "", fmt.Errorf("rotate API key of %s: %w", publicID, err)
	}
	if tag.RowsAffected() == 0 {
		return "", ErrNotFound
	}
	return key, nil
}

// AddWithKey creates a site (as Add does) and gives it its first API key.
func AddWithKey(ctx context.Context, pool *pgxpool.Pool, n NewSite) (Site, string, error) {
	s, err := Add(ctx, pool, n)
	if err != nil {
		return Site{}, "", err
	}
	key, err := RotateKey(ctx, pool, s.PublicID)
	if err != nil {
		return s, "", fmt.Errorf("site %s was added without an API key (run `opsmantik site rotate-key --public-id %s`): %w", s.PublicID, s.PublicID, err)
	}
	return s, key, nil
}

// Authenticate returns the site with public id publicID when key is its API
// key. It reads the stored hash on every call (never from a cache), so a
// rotated key stops working at once. A site without a key accepts none.
func Authenticate(ctx context.Context, pool *pgxpool.Pool, publicID, key string) (Site, error) {
	if publicID == "" || key == "" {
		return Site{}, ErrUnauthorized
	}
	var hash pgtype.Text
	s, err := scanSite(hashThen{pool.QueryRow(ctx, `SELECT stats_api_key_hash, `+siteColumns+` FROM sites WHERE public_id = $1`, publicID), &hash})
	if errors.Is(err, pgx.ErrNoRows) {
		return Site{}, ErrUnauthorized
	}
	if err != nil {
		return Site{}, fmt.Errorf("look up site %s: %w", publicID, err)
	}
	want := HashAPIKey(key)
	if !hash.Valid || subtle.ConstantTimeCompare([]byte(hash.String), []byte(want)) != 1 {
		return Site{}, ErrUnauthorized
	}
	return s, nil
}

// hashThen scans the key hash that leads the row, then hands the rest to
// scanSite, so that the site's columns are read one way everywhere.
type hashThen struct {
	row  pgx.Row
	hash *pgtype.Text
}

func (h hashThen) Scan(dest ...any) error {
	return h.row.Scan(append([]any{h.hash}, dest...)...)
}
