// Package dbtest gives each test its own freshly migrated PostgreSQL database.
//
// The server is the one DATABASE_URL points at (default: 127.0.0.1:5432 as
// user postgres). A migrated template is made once per test binary; every
// call to New clones it and drops the clone when the test ends, so tests are
// independent and can run in parallel.
//
// With OPSMANTIK_TEST_PGBOUNCER set to exec or simple_protocol, the test
// binary runs a real PgBouncer in transaction mode in front of that server
// (pooler.go): New and URL then go through it with pgx's
// default_query_exec_mode set to that mode, while creating, cloning and
// dropping databases stays on a direct connection (DirectURL).
package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/database"
)

// DefaultURL is the database the tests use when DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// ServerURL is the URL of the server tests run against (any database on it).
func ServerURL() string {
	if v := os.Getenv("DATABASE_URL"); v != "" {
		return v
	}
	return DefaultURL
}

// URL returns the connection URL for database name: through PgBouncer in
// pooler mode (see Pooled), otherwise the same as DirectURL. Tests that run
// the CLI pass it as DATABASE_URL, so that the CLI goes through the pooler too.
func URL(name string) string {
	if p := pooler(); p != nil {
		return p.URL(name, Pooled())
	}
	return DirectURL(name)
}

// DirectURL returns the URL for database name on the test server itself,
// never through the pooler: for what must not go through a transaction-mode
// pooler (creating databases, running migrations).
func DirectURL(name string) string {
	u, err := url.Parse(ServerURL())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func adminConn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, DirectURL("postgres"))
}

func makeTemplate() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := adminConn(ctx)
	if err != nil {
		return "", fmt.Errorf("dbtest: PostgreSQL does not answer at %s (run the tests through `make test`, which starts one): %w", ServerURL(), err)
	}
	defer conn.Close(ctx)
	name := "opsmantik_tpl_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("dbtest: create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, DirectURL(name))
	if err != nil {
		return "", err
	}
	err = database.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("dbtest: migrate template: %w", err)
	}
	return name, nil
}

// Name creates a fresh migrated database and returns its name; it is dropped
// when the test ends.
func Name(tb testing.TB) string {
	tb.Helper()
	templateOnce.Do(func() { templateName, templateErr = makeTemplate() })
	if templateErr != nil {
		tb.Fatal(templateErr)
	}
	ctx := context.Background()
	conn, err := adminConn(ctx)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	defer conn.Close(ctx)
	name := "opsmantik_t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	// CREATE DATABASE ... TEMPLATE fails while another session is connected to
	// the template; clones are made one at a time from a template nobody uses.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, templateName))
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("dbtest: create database: %v", err)
	}
	tb.Cleanup(func() { drop(name) })
	return name
}

// New creates a fresh migrated database and returns a pool on it (through
// PgBouncer in pooler mode).
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	name := Name(tb)
	pool, err := pgxpool.New(context.Background(), URL(name))
	if err != nil {
		tb.Fatalf("dbtest: open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func drop(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := adminConn(ctx)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
}

// DropTemplate removes this binary's template database; call it from TestMain
// after m.Run. Leaving it behind is harmless but untidy. Run does this and
// also stops the pooler.
func DropTemplate() {
	if templateName != "" {
		drop(templateName)
	}
}

// Run runs a package's tests and returns their exit code: in pooler mode it
// starts PgBouncer first (and fails the run at once when it cannot), then
// drops the template database and stops PgBouncer. For a TestMain that has
// more to do; Main is the usual one.
func Run(m *testing.M) int {
	if os.Getenv(PoolerEnv) != "" {
		if err := startPooler(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	DropTemplate()
	stopPooler()
	return code
}

// Main runs a package's tests and then cleans up (see Run).
func Main(m *testing.M) { os.Exit(Run(m)) }
