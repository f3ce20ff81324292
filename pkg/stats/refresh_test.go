package stats_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

func TestRefreshRecordsEachRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	handSite(t, pool)
	before := time.Now()
	r := refresh(t, pool)
	var viewRows int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mv_daily_analytics_summary`).Scan(&viewRows); err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Error != "" || r.Trigger != "test" || r.Rows != viewRows || viewRows == 0 || r.Ms < 0 ||
		r.StartedAt.Before(before.Add(-time.Minute)) || r.FinishedAt.Before(r.StartedAt) {
		t.Errorf("refresh %+v (view has %d rows)", r, viewRows)
	}

	// Without its unique index the view cannot refresh CONCURRENTLY: the
	// failure is recorded, returned, and leaves the view as it was.
	if _, err := pool.Exec(ctx, `DROP INDEX mv_daily_analytics_summary_key`); err != nil {
		t.Fatal(err)
	}
	failed, err := stats.RunRefresh(ctx, pool, stats.TriggerCLI)
	var re *stats.RefreshError
	if !errors.As(err, &re) || failed.OK || !strings.Contains(failed.Error, "concurrently") || re.Refresh.ID != failed.ID {
		t.Fatalf("refresh without the index: %+v, %v", failed, err)
	}
	var stored struct {
		ok  bool
		msg string
	}
	if err := pool.QueryRow(ctx, `SELECT ok, error FROM analytics_refreshes WHERE id = $1`, failed.ID).Scan(&stored.ok, &stored.msg); err != nil || stored.ok || stored.msg != failed.Error {
		t.Errorf("stored failure %+v, %v", stored, err)
	}
	if _, err := pool.Exec(ctx, `CREATE UNIQUE INDEX mv_daily_analytics_summary_key ON mv_daily_analytics_summary (site_id, day, traffic_source, device_type)`); err != nil {
		t.Fatal(err)
	}
	if again := refresh(t, pool); again.ID <= failed.ID {
		t.Errorf("ids %d then %d", failed.ID, again.ID)
	}

	// A trigger that is no name is refused outright.
	if _, err := stats.RunRefresh(ctx, pool, "Not A Name"); err == nil {
		t.Error("a bad trigger name was recorded")
	}
}

// poolURL is the test database's URL with query parameters set.
func poolURL(t *testing.T, pool *pgxpool.Pool, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(dbtest.URL(pool.Config().ConnConfig.Database))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// TestEveryExecMode: the refresh and the summary work in every pgx exec
// mode, repeatedly (cached statements are reused).
func TestEveryExecMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := dbtest.New(t)
	site := handSite(t, base)
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			pool, err := pgxpool.New(ctx, poolURL(t, base, map[string]string{"default_query_exec_mode": mode}))
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			svc := stats.NewService(pool, stats.WithClock(fixedClock(time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC))))
			for range 3 {
				if _, err := stats.RunRefresh(ctx, pool, stats.TriggerCLI); err != nil {
					t.Fatal(err)
				}
				a, err := svc.Summary(ctx, site, stats.Request{From: "2025-03-01", To: "2025-03-04", DeviceType: "mobile"})
				if err != nil {
					t.Fatal(err)
				}
				if a.Totals.Sessions != 3 || a.ServedFrom.ViewDays != 4 {
					t.Fatalf("%+v", a)
				}
				if f, err := stats.RefreshIfStale(ctx, pool, time.Now(), time.Hour, stats.TriggerWatchtower); err != nil || f.Stale || f.Refreshed != nil {
					t.Fatalf("fresh view: %+v, %v", f, err)
				}
			}
		})
	}
}

// TestARefreshDoesNotBlockReaders: a refresh in progress holds the view's
// EXCLUSIVE lock, which lets readers through, and they read the rows of the
// previous refresh. (A plain REFRESH, without CONCURRENTLY, would block
// them: the control at the end.)
func TestARefreshDoesNotBlockReaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	site := handSite(t, pool)
	refresh(t, pool)
	svc := stats.NewService(pool, stats.WithClock(fixedClock(time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC))))
	req := stats.Request{From: "2025-03-01", To: "2025-03-04"}
	insertSessions(t, pool, []session{{site: site, started: time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC), duration: time.Minute}})

	// Connections of their own, released when the (sub)test ends.
	conn := func(t *testing.T) *pgxpool.Conn {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release)
		return c
	}
	// A reader that gives up rather than wait for a lock.
	reader := conn(t)
	if _, err := reader.Exec(ctx, `SET lock_timeout = '3s'`); err != nil {
		t.Fatal(err)
	}
	readView := func() (int64, error) {
		var n int64
		err := reader.QueryRow(ctx, `SELECT coalesce(sum(total_sessions), 0) FROM mv_daily_analytics_summary WHERE site_id = $1`, site).Scan(&n)
		return n, err
	}

	t.Run("while the refresh computes", func(t *testing.T) {
		// Hold the refresh in the middle: it has locked the view and waits
		// to read sessions, which another transaction has locked.
		holder := conn(t)
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		refresher := conn(t)
		var pid uint32 = refresher.Conn().PgConn().PID()
		done := make(chan error, 1)
		go func() { _, err := stats.RunRefresh(ctx, refresher, "test"); done <- err }()
		waitForLocks(t, pool, pid)
		n, err := readView()
		if err != nil || n != 9 {
			t.Errorf("reading the view during the refresh: %d sessions, %v; want the previous refresh's 9", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n, err := readView(); err != nil || n != 10 {
			t.Errorf("after the refresh: %d sessions, %v; want 10", n, err)
		}
	})

	insertSessions(t, pool, []session{{site: site, started: time.Date(2025, 3, 2, 13, 0, 0, 0, time.UTC), duration: time.Minute}})
	t.Run("while the refresh has not committed", func(t *testing.T) {
		holder := conn(t)
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stats.RunRefresh(ctx, tx, "test"); err != nil {
			t.Fatal(err)
		}
		// The whole summary, from another connection, through the lock.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		a, err := svc.Summary(sctx, site, req)
		cancel()
		if err != nil || a.Totals.Sessions != 9 || a.ServedFrom.ViewDays != 4 {
			t.Errorf("summary during the refresh: %d sessions from %d view days, %v; want the previous refresh's 9", a.Totals.Sessions, a.ServedFrom.ViewDays, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if a, err := svc.Summary(ctx, site, req); err != nil || a.Totals.Sessions != 10 {
			t.Errorf("after it: %d sessions, %v; want 10", a.Totals.Sessions, err)
		}
	})

	t.Run("control: a plain REFRESH blocks them", func(t *testing.T) {
		holder := conn(t)
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `REFRESH MATERIALIZED VIEW mv_daily_analytics_summary`); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.Exec(ctx, `SET lock_timeout = '200ms'`); err != nil {
			t.Fatal(err)
		}
		_, err = readView()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			t.Errorf("reading during a plain REFRESH: %v, want a lock timeout", err)
		}
	})
}

// waitForLocks waits until backend pid holds the view's EXCLUSIVE lock and
// waits for a lock on sessions: the refresh is under way and held.
func waitForLocks(t *testing.T, pool *pgxpool.Pool, pid uint32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var holdsView, waits bool
		err := pool.QueryRow(context.Background(), `
			SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND relation = 'mv_daily_analytics_summary'::regclass
			                 AND mode = 'ExclusiveLock' AND granted),
			       EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND relation = 'sessions'::regclass AND NOT granted)`,
			int64(pid)).Scan(&holdsView, &waits)
		if err != nil {
			t.Fatal(err)
		}
		if holdsView && waits {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refresh (pid %d) never held the view and waited for sessions: %v %v", pid, holdsView, waits)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRefreshIfStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	var dbNow time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&dbNow); err != nil {
		t.Fatal(err)
	}
	const maxAge = 90 * time.Minute

	// Never tried: refreshed, but not stale.
	f, err := stats.RefreshIfStale(ctx, pool, dbNow, maxAge, stats.TriggerWatchtower)
	if err != nil || f.Stale || f.Attempted || f.LastOK != nil || f.Refreshed == nil || !f.Refreshed.OK || f.Refreshed.Trigger != "watchtower" {
		t.Fatalf("first: %+v, %v", f, err)
	}
	first := f.Refreshed.StartedAt
	// Fresh: nothing to do.
	f, err = stats.RefreshIfStale(ctx, pool, first.Add(maxAge), maxAge, stats.TriggerWatchtower)
	if err != nil || f.Stale || f.Refreshed != nil || f.LastOK == nil || !f.LastOK.Equal(first) || f.Age != maxAge || f.LastOKTrigger != "watchtower" {
		t.Fatalf("at the maximum age: %+v, %v", f, err)
	}
	// Past the maximum age: refreshed and stale.
	f, err = stats.RefreshIfStale(ctx, pool, first.Add(maxAge+time.Second), maxAge, stats.TriggerWatchtower)
	if err != nil || !f.Stale || f.Refreshed == nil || !f.Refreshed.OK || f.Age != maxAge+time.Second {
		t.Fatalf("past the maximum age: %+v, %v", f, err)
	}
	// A refresh that fails is an error, with its record.
	if _, err := pool.Exec(ctx, `DROP INDEX mv_daily_analytics_summary_key`); err != nil {
		t.Fatal(err)
	}
	f, err = stats.RefreshIfStale(ctx, pool, dbNow.Add(24*time.Hour), maxAge, stats.TriggerWatchtower)
	var re *stats.RefreshError
	if !errors.As(err, &re) || !f.Stale || f.Refreshed == nil || f.Refreshed.OK {
		t.Fatalf("failing refresh: %+v, %v", f, err)
	}
	// Attempts without a success are stale too.
	if _, err := pool.Exec(ctx, `DELETE FROM analytics_refreshes WHERE ok`); err != nil {
		t.Fatal(err)
	}
	f, err = stats.RefreshIfStale(ctx, pool, dbNow, maxAge, stats.TriggerWatchtower)
	if err == nil || !f.Stale || !f.Attempted || f.LastOK != nil {
		t.Fatalf("only failures: %+v, %v", f, err)
	}
}

// TestRefreshInATransaction: the refresh is one statement that also runs
// inside a caller's transaction (as a pooler in transaction mode runs it).
func TestRefreshInATransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	handSite(t, pool)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
			return err
		}
		_, err := stats.RunRefresh(ctx, tx, stats.TriggerCLI)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM analytics_refreshes WHERE ok`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d refreshes, %v", n, err)
	}
}
