package dbtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/opsmantik/opsmantik/pkg/dbtest/pgbouncer"
)

// PoolerEnv turns pooler mode on: exec or simple_protocol, the pgx query
// exec modes that work behind a transaction-mode pooler.
const PoolerEnv = "OPSMANTIK_TEST_PGBOUNCER"

// poolerSize is PgBouncer's default_pool_size: server connections per test
// database, above what one test's pool opens (pgxpool's default is 4 on this
// machine) so that tests wait on their own work, not on the pooler.
const poolerSize = 20

// One PgBouncer per test binary, like the template database.
var (
	poolerOnce sync.Once
	poolerProc *pgbouncer.Bouncer
	poolerErr  error
)

func parseMode(v string) (string, error) {
	switch v {
	case "", "exec", "simple_protocol":
		return v, nil
	}
	return "", fmt.Errorf("dbtest: %s=%q: want exec or simple_protocol (or unset for direct connections)", PoolerEnv, v)
}

// Pooled returns the pgx exec mode the tests run with through PgBouncer
// ("exec" or "simple_protocol"), or "" when they connect directly.
func Pooled() string {
	mode, _ := parseMode(os.Getenv(PoolerEnv))
	return mode
}

// Pooler returns the test binary's PgBouncer (started on first use), or nil
// outside pooler mode. Its AdminURL reaches PgBouncer's console.
func Pooler() *pgbouncer.Bouncer { return pooler() }

func pooler() *pgbouncer.Bouncer {
	if os.Getenv(PoolerEnv) == "" {
		return nil
	}
	if err := startPooler(); err != nil {
		// URL has no testing.TB to fail; Run reports this before any test.
		panic(err)
	}
	return poolerProc
}

func startPooler() error {
	poolerOnce.Do(func() {
		if _, poolerErr = parseMode(os.Getenv(PoolerEnv)); poolerErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		poolerProc, poolerErr = pgbouncer.Start(ctx, pgbouncer.Options{Server: ServerURL(), PoolSize: poolerSize})
		if poolerErr != nil {
			poolerErr = fmt.Errorf("dbtest: %s=%s: %w", PoolerEnv, os.Getenv(PoolerEnv), poolerErr)
		}
	})
	return poolerErr
}

func stopPooler() {
	if poolerProc != nil {
		_ = poolerProc.Stop()
	}
}
