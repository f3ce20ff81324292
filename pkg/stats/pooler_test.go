package stats_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
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
func startPgBouncer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/pgbouncer"); err != nil {
			t.Fatal("pgbouncer is not installed: scripts/ensure-pgcron.sh installs it")
		}
	}
	server, err := url.Parse(dbtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	host, port := server.Hostname(), server.Port()
	if port == "" {
		port = "5432"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, listenPort, _ := net.SplitHostPort(addr)

	dir, err := os.MkdirTemp("", "opsmantik-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := fmt.Sprintf(`[databases]
* = host=%s port=%s user=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %s
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, host, port, server.User.Username(), listenPort, filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	confPath := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, confPath)
	// PgBouncer refuses to run as root.
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and there is no postgres user to run pgbouncer as: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			so, _ := os.ReadFile(filepath.Join(dir, "stdout"))
			t.Fatalf("pgbouncer exited:\n%s\n%s", log, so)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer does not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
