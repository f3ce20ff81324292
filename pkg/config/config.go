// Package config holds one configuration struct per function, read from the
// environment with go-envconfig and validated at start.
package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// Database is the PostgreSQL connection every function with a database shares.
type Database struct {
	URL string `env:"DATABASE_URL, default=postgres://postgres@127.0.0.1:5432/opsmantik?sslmode=disable"`
	// MaxConns caps the pool; keep it small on Lambda, where every concurrent
	// instance opens its own pool.
	MaxConns int32 `env:"DB_MAX_CONNS, default=4"`
}

// Log is the logging configuration every function shares.
type Log struct {
	Level slog.Level `env:"LOG_LEVEL, default=info"`
}

// Sync configures functions/sync (the ingest endpoint).
type Sync struct {
	Database Database
	Log      Log
}

// Validator is implemented by configuration structs with rules beyond types.
type Validator interface {
	Validate() error
}

// Load fills cfg from the process environment. The error is one line that
// names the variable at fault.
func Load(ctx context.Context, cfg any) error {
	return LoadFrom(ctx, envconfig.OsLookuper(), cfg)
}

// LoadFrom is Load with an explicit source of variables (tests use a map).
func LoadFrom(ctx context.Context, l envconfig.Lookuper, cfg any) error {
	rec := &lastLookup{l: l}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: cfg, Lookuper: rec}); err != nil {
		return fmt.Errorf("configuration: %s", rec.explain(err))
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("configuration: %s", oneLine(err))
		}
	}
	return nil
}

// oneLine keeps go-envconfig's text ("Field: missing required value: VAR")
// but never lets it span lines.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// Logger returns the JSON logger every function writes with.
func (l Log) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l.Level}))
}

// MustLoad loads cfg or exits with the configuration error on one line.
// Only main packages call it.
func MustLoad(ctx context.Context, cfg any) {
	if err := Load(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Dev configures `opsmantik dev`, the whole stack on one machine.
type Dev struct {
	Database Database
	Log      Log
	Addr     string `env:"OPSMANTIK_ADDR, default=127.0.0.1:8080"`
	// Alerting (pkg/config/alerting.go): without a token, alerts go to the log.
	Telegram   Telegram
	Alerting   Alerting
	Cron       Cron
	CronSecret Secret `env:"CRON_SECRET"`
}

// CLI configures the command line's database commands (migrate, site, stats); `run` uses Jobs.
type CLI struct {
	Database  Database
	Log       Log
	Analytics Analytics
}
