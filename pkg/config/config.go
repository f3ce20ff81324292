// Package config holds one configuration struct per function, read from the
// environment with go-envconfig and validated at start.
package config

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// Database is the PostgreSQL connection of a deployed function: the URL is
// required (a function has no local server to fall back on) and never
// logged, since it usually holds a password.
type Database struct {
	URL string `env:"DATABASE_URL, required"`
	// MaxConns caps the pool; keep it small on Lambda, where every concurrent
	// instance opens its own pool.
	MaxConns int32 `env:"DB_MAX_CONNS, default=4"`
}

// DefaultDatabaseURL is the local server the command line and `opsmantik
// dev` use when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/opsmantik?sslmode=disable"

// LocalDatabase is Database for the command line and `opsmantik dev`, with
// the local server as the default.
type LocalDatabase struct {
	URL      string `env:"DATABASE_URL, default=postgres://postgres@127.0.0.1:5432/opsmantik?sslmode=disable"`
	MaxConns int32  `env:"DB_MAX_CONNS, default=4"`
}

// Validate refuses a pool that could never hand out a connection.
func (d Database) Validate() error { return validatePool(d.MaxConns) }

// Validate refuses a pool that could never hand out a connection.
func (d LocalDatabase) Validate() error { return validatePool(d.MaxConns) }

func validatePool(n int32) error {
	if n < 1 {
		return fmt.Errorf("DB_MAX_CONNS: must be at least 1, got %d", n)
	}
	return nil
}

// LogValue keeps the URL's password out of logs.
func (d Database) LogValue() slog.Value { return redactedDatabase(d.URL, d.MaxConns) }

// LogValue keeps the URL's password out of logs.
func (d LocalDatabase) LogValue() slog.Value { return redactedDatabase(d.URL, d.MaxConns) }

func redactedDatabase(raw string, maxConns int32) slog.Value {
	return slog.GroupValue(slog.String("url", RedactURL(raw)), slog.Int("max_conns", int(maxConns)))
}

// RedactURL is a database URL without its password (or "[unparseable]").
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable]"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.Redacted()
}

// Log is the logging configuration every function shares.
type Log struct {
	Level slog.Level `env:"LOG_LEVEL, default=info"`
}

// Sync configures functions/sync (the ingest endpoint).
type Sync struct {
	Database Database
	Log      Log
	// Publish hands new conversions to QStash (pkg/conversions).
	Publish QStashPublish
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
	if err := validateFields(cfg); err != nil {
		return fmt.Errorf("configuration: %s", oneLine(err))
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("configuration: %s", oneLine(err))
		}
	}
	return nil
}

// validateFields validates the struct fields of cfg that have rules of
// their own (Database, …), so that every function that embeds one gets them.
func validateFields(cfg any) error {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		if f, ok := v.Field(i).Interface().(Validator); ok {
			if err := f.Validate(); err != nil {
				return err
			}
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
	Database LocalDatabase
	Log      Log
	Addr     string `env:"OPSMANTIK_ADDR, default=127.0.0.1:8080"`
	// DemoData: on the first start (the demo site has no sessions yet), write
	// 90 days of sample data for it (pkg/seed) so that the dashboard is full.
	DemoData bool `env:"OPSMANTIK_DEMO_DATA, default=true"`
	// Alerting (pkg/config/alerting.go): without a token, alerts go to the log.
	Telegram   Telegram
	Alerting   Alerting
	Auditing   Auditing
	Cron       Cron
	CronSecret Secret `env:"CRON_SECRET"`
	// The Google Ads loop (pkg/conversions, dev.go): without QSTASH_TOKEN a
	// local QStash delivers to /api/sync-google-ads; without Google Ads
	// credentials the worker runs dry.
	Publish   QStashPublish
	Delivery  QStashDelivery
	GoogleAds GoogleAds
	GA4       GA4
	Sweep     ConversionSweep
}

// CLI configures the command line's database commands (migrate, site, stats); `run` uses Jobs.
type CLI struct {
	Database  LocalDatabase
	Log       Log
	Analytics Analytics
}
