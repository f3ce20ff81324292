// Package database opens the PostgreSQL pool and applies the embedded migrations.
package database

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	migrations "github.com/opsmantik/opsmantik/sql"
)

// Open makes a pool for databaseURL with at most maxConns connections. It
// connects lazily: a database that is down shows at the first query, not here
// (so that a function starts, and can report, while the database is away). Behind a transaction-mode pooler (PgBouncer,
// Supavisor, RDS Proxy) add default_query_exec_mode=exec (or simple_protocol) to
// the URL so that pgx keeps no server-side prepared statements.
func Open(ctx context.Context, databaseURL string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	applyServerlessDefaults(cfg, databaseURL)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// Defaults for a pool that lives in a Lambda instance, each applied unless
// the URL sets it: an unreachable database fails the connection in seconds
// (the sync handler's whole deadline is 5 s); idle connections close after a
// minute, so that frozen or idle instances do not hold server (or pooler)
// connections; a connection idle for over a second is pinged before use
// (pgx's default), and a ping that does not answer in 2 s drops it.
const (
	ConnectTimeout  = 3 * time.Second
	MaxConnIdleTime = time.Minute
	PingTimeout     = 2 * time.Second
	ApplicationName = "opsmantik"
)

func applyServerlessDefaults(cfg *pgxpool.Config, databaseURL string) {
	set := func(param string) bool { return strings.Contains(databaseURL, param+"=") }
	if !set("connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	if !set("pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = MaxConnIdleTime
	}
	cfg.PingTimeout = PingTimeout
	if !set("application_name") {
		cfg.ConnConfig.RuntimeParams["application_name"] = ApplicationName
	}
}

// OpenMigrated creates the database when it does not exist, opens a pool on
// it and applies the pending migrations: what `opsmantik dev` and
// `opsmantik migrate` need.
func OpenMigrated(ctx context.Context, databaseURL string, maxConns int32) (*pgxpool.Pool, error) {
	if err := EnsureDatabase(ctx, databaseURL); err != nil {
		return nil, err
	}
	pool, err := Open(ctx, databaseURL, maxConns)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate applies every pending migration in sql/ to the database behind pool.
// Applying to an up-to-date database is a no-op.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrateDB(ctx, db)
}

func migrateDB(ctx context.Context, db *sql.DB) error {
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		slog.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "ms", r.Duration.Milliseconds())
	}
	return nil
}

// EnsureDatabase creates the database named in databaseURL when it does not
// exist, connecting to the server's "postgres" database to do so.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	name, adminURL, err := AdminURL(databaseURL)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to server: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	slog.InfoContext(ctx, "database created", "database", name)
	return nil
}

// WithDatabase returns databaseURL pointing at database name instead.
func WithDatabase(databaseURL, name string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// AdminURL returns the database name in databaseURL and the same URL pointing
// at the server's "postgres" database.
func AdminURL(databaseURL string) (name, adminURL string, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	name = strings.TrimPrefix(u.Path, "/")
	if name == "" {
		name = "postgres"
	}
	u.Path = "/postgres"
	return name, u.String(), nil
}
