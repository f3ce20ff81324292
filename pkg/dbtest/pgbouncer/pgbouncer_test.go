package pgbouncer

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The admin console needs no PostgreSQL server behind PgBouncer.
const nowhere = "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable"

func TestStartServesTheConsoleAndStopLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	b, err := Start(ctx, Options{Server: nowhere, PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	conn, err := pgx.Connect(ctx, b.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SHOW CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	config := map[string]string{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		config[fmt.Sprint(vals[0])] = fmt.Sprint(vals[1])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for k, want := range map[string]string{"pool_mode": "transaction", "listen_addr": "127.0.0.1", "default_pool_size": "3", "auth_type": "trust"} {
		if config[k] != want {
			t.Errorf("%s = %q, want %q", k, config[k], want)
		}
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind: %v", b.dir, err)
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("still listening on %s after Stop", b.Addr())
	}
	if err := b.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartExplainsWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	_, err := Start(ctx, Options{Server: nowhere, Binary: "/nonexistent/pgbouncer"})
	if err == nil || !strings.Contains(err.Error(), "scripts/ensure-pgbouncer.sh") {
		t.Errorf("missing binary: %v", err)
	}
	if _, err := Start(ctx, Options{Server: "mysql://x"}); err == nil || !strings.Contains(err.Error(), "server URL") {
		t.Errorf("bad server URL: %v", err)
	}
}
