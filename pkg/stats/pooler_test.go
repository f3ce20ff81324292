package stats_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/dbtest/pgbouncer"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// TestThroughATransactionModePooler runs the refresh and the summary through
// PgBouncer in transaction mode, where consecutive statements of one client
// land on different server connections: the refresh must be one statement
// and nothing may rely on server-side prepared statements. Four clients
// share two server connections.
func TestThroughATransactionModePooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := dbtest.New(t)
	site := handSite(t, base)
	addr := startPgBouncer(t)
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			u, err := url.Parse(poolURL(t, base, map[string]string{"default_query_exec_mode": mode, "pool_max_conns": "4"}))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = addr
			pool, err := pgxpool.New(ctx, u.String())
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			svc := stats.NewService(pool, stats.WithClock(fixedClock(time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC))))
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i%2 == 0 {
						if _, err := stats.RunRefresh(ctx, pool, stats.TriggerCLI); err != nil {
							errs <- err
						}
						return
					}
					a, err := svc.Summary(ctx, site, stats.Request{From: "2025-03-01", To: "2025-03-04"})
					if err == nil && a.Totals.Sessions != 8 {
						err = fmt.Errorf("%d sessions, want 8", a.Totals.Sessions)
					}
					if err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
	var n int
	if err := base.QueryRow(ctx, `SELECT count(*) FROM analytics_refreshes WHERE ok AND trigger = 'cli'`).Scan(&n); err != nil || n != 8 {
		t.Errorf("%d refreshes recorded through the pooler, want 8 (%v)", n, err)
	}
}

// startPgBouncer starts a private PgBouncer (transaction mode, two server
// connections per database) in front of the test server and returns its
// address; it is stopped when the test ends.
// startPgBouncer starts a private PgBouncer in transaction mode with two
// server connections (pkg/dbtest/pgbouncer) and returns its address.
func startPgBouncer(t *testing.T) string {
	t.Helper()
	b, err := pgbouncer.Start(context.Background(), pgbouncer.Options{Server: dbtest.ServerURL(), PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	return b.Addr()
}
