package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// openDB loads the CLI configuration, sets the JSON logger and opens the pool.
func openDB(ctx context.Context) (*pgxpool.Pool, error) {
	var cfg config.CLI
	if err := config.Load(ctx, &cfg); err != nil {
		return nil, err
	}
	slog.SetDefault(cfg.Log.Logger())
	return database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
}

func runMigrate(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("migrate takes no arguments")
	}
	var cfg config.CLI
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	slog.SetDefault(cfg.Log.Logger())
	pool, err := database.OpenMigrated(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The hourly refresh of the daily analytics, when the server has pg_cron.
	cron, err := stats.ScheduleRefresh(ctx, pool, cfg.Database.URL, cfg.Analytics.RefreshSchedule)
	if err != nil {
		return err
	}
	fmt.Println(cron)
	return nil
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runSite(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(siteUsage)
	}
	switch args[0] {
	case "add":
		var n sites.NewSite
		var domains stringList
		fs := flag.NewFlagSet("site add", flag.ContinueOnError)
		fs.StringVar(&n.PublicID, "public-id", "", "the id the tracker sends (data-site)")
		fs.Var(&domains, "domain", "an allowed domain (repeatable); its subdomains are allowed too")
		fs.StringVar(&n.Timezone, "timezone", "UTC", "IANA time zone for daily figures")
		fs.StringVar(&n.Currency, "currency", "USD", "ISO 4217 currency of conversion values")
		fs.StringVar(&n.Name, "name", "", "display name")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		n.Domains = domains
		if err := n.Validate(); err != nil {
			return err
		}
		pool, err := openDB(ctx)
		if err != nil {
			return err
		}
		defer pool.Close()
		s, key, err := sites.AddWithKey(ctx, pool, n)
		if err != nil {
			return err
		}
		// The key is shown this once; only its hash is stored.
		return printJSON(siteWithKey{Site: s, APIKey: key})
	case "list":
		pool, err := openDB(ctx)
		if err != nil {
			return err
		}
		defer pool.Close()
		list, err := sites.List(ctx, pool)
		if err != nil {
			return err
		}
		if list == nil {
			list = []sites.Site{}
		}
		out, err := withAds(ctx, pool, list)
		if err != nil {
			return err
		}
		return printJSON(out)
	case "set":
		return runSiteSet(ctx, args[1:])
	case "rotate-key":
		return runSiteRotateKey(ctx, args[1:])
	default:
		return fmt.Errorf("unknown site command %q (add, list, set, rotate-key)", args[0])
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
