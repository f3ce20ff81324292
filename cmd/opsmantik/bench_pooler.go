package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest/pgbouncer"
)

// pooledExecMode is what the README tells production to add to DATABASE_URL
// behind a transaction-mode pooler.
const pooledExecMode = "exec"

// optionalSide is a bench side that may fail without stopping the bench: its
// error is printed in place of its figures.
type optionalSide struct {
	name string
	do   func(int) error
	pool *pgxpool.Pool // nil when the side failed to start
	stop func()
	err  error
	res  benchResult
}

// drive runs items [from, to) like the other sides and counts them.
func (s *optionalSide) drive(from, to, c int, limit time.Duration) {
	if r, ok := s.run(from, to, c, limit); ok {
		s.res = s.res.add(r)
	}
}

// warmUp runs items [from, to) without counting them.
func (s *optionalSide) warmUp(from, to, c int, limit time.Duration) { s.run(from, to, c, limit) }

func (s *optionalSide) run(from, to, c int, limit time.Duration) (benchResult, bool) {
	if s.err != nil {
		return benchResult{}, false
	}
	r, err := drive(from, to, c, limit, s.do)
	if err != nil {
		s.err = err
		return benchResult{}, false
	}
	return r, true
}

// report prints the side's figures as (letter) and its ratio to a.
func (s *optionalSide) report(letter string, a benchResult) {
	if s.err != nil {
		fmt.Printf("(%s) %s: not measured: %s\n", letter, s.name, shorten(s.err.Error(), 400))
		return
	}
	fmt.Printf("(%s) %s: %s\n", letter, s.name, s.res)
	fmt.Printf("ratio %s/a: %.2f\n", letter, s.res.perSecond()/a.perSecond())
}

func (s *optionalSide) close() {
	if s.stop != nil {
		s.stop()
	}
}

// pooledSide is the HTTP side again, its pool going through a private
// PgBouncer in transaction mode with pgx in exec mode, on a fresh database of
// its own. One batch is first stored through the store directly, so that a
// failure is reported with its cause (the HTTP answer only says
// storage_unavailable).
func pooledSide(ctx context.Context, serverURL string, n, c int) *optionalSide {
	s := &optionalSide{name: fmt.Sprintf("HTTP through PgBouncer (transaction mode, %s)", pooledExecMode)}
	var cleanups []func()
	s.stop = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(what string, err error) *optionalSide {
		s.err = fmt.Errorf("%s: %w", what, err)
		s.stop()
		s.stop = nil
		return s
	}
	bouncer, err := pgbouncer.Start(ctx, pgbouncer.Options{Server: serverURL, PoolSize: c})
	if err != nil {
		return fail("start PgBouncer", err)
	}
	cleanups = append(cleanups, func() { _ = bouncer.Stop() })
	direct, drop, err := benchDatabase(ctx, serverURL, "pooled", 1) // created and migrated directly
	if err != nil {
		return fail("database", err)
	}
	cleanups = append(cleanups, drop)
	name := direct.Config().ConnConfig.Database
	direct.Close()

	cfg, err := pgxpool.ParseConfig(bouncer.URL(name, pooledExecMode))
	if err != nil {
		return fail("PgBouncer URL", err)
	}
	cfg.MaxConns = int32(c)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail("open pool through PgBouncer", err)
	}
	cleanups = append(cleanups, pool.Close)
	first, err := directSide(ctx, pool, 1)
	if err == nil {
		err = first(0)
	}
	if err != nil {
		return fail("store a batch through PgBouncer", err)
	}
	do, stopHTTP, err := httpSide(ctx, pool, n, c)
	if err != nil {
		return fail("serve", err)
	}
	cleanups = append(cleanups, stopHTTP)
	s.do, s.pool = do, pool
	return s
}

// shorten cuts s to n bytes: pgx's encoding errors quote whole arguments.
func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
