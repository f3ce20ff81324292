package dbtest_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/dbtest/pgbouncer"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// route is one way of reaching the test server through PgBouncer.
type route struct {
	mode  string
	url   func(database string) string
	admin string
	port  int
}

// routes are the test binary's own PgBouncer in pooler mode; otherwise a
// PgBouncer started for this test, in both exec modes, so that a direct run
// proves the pooler setup too.
func routes(t *testing.T) []route {
	t.Helper()
	if mode := dbtest.Pooled(); mode != "" {
		p := dbtest.Pooler()
		t.Logf("pooler mode %s: PgBouncer at %s", mode, p.Addr())
		return []route{{mode: mode, url: dbtest.URL, admin: p.AdminURL(), port: p.Port()}}
	}
	b, err := pgbouncer.Start(context.Background(), pgbouncer.Options{Server: dbtest.ServerURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	var out []route
	for _, mode := range []string{"exec", "simple_protocol"} {
		out = append(out, route{mode: mode, url: func(db string) string { return b.URL(db, mode) }, admin: b.AdminURL(), port: b.Port()})
	}
	return out
}

// execModes are the URL's default_query_exec_mode values pooler mode uses.
var execModes = map[string]pgx.QueryExecMode{"exec": pgx.QueryExecModeExec, "simple_protocol": pgx.QueryExecModeSimpleProtocol}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// show runs an admin console command and returns its rows as text.
func show(t *testing.T, admin *pgx.Conn, cmd string) []map[string]string {
	t.Helper()
	rows, err := admin.Query(context.Background(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = fmt.Sprint(vals[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

func TestQueriesGoThroughPgBouncer(t *testing.T) {
	for _, r := range routes(t) {
		t.Run(r.mode, func(t *testing.T) {
			ctx := context.Background()
			name := dbtest.Name(t)
			conn := connect(t, r.url(name))
			if got := conn.Config().DefaultQueryExecMode; got != execModes[r.mode] {
				t.Fatalf("exec mode %s, want %s", got, r.mode)
			}
			var db string
			var backendClientPort, answer int
			if err := conn.QueryRow(ctx, `SELECT current_database(), inet_client_port(), $1::int + 1`, 41).
				Scan(&db, &backendClientPort, &answer); err != nil {
				t.Fatal(err)
			}
			local := conn.PgConn().Conn().LocalAddr().(*net.TCPAddr).Port
			if db != name || answer != 42 || conn.PgConn().Conn().RemoteAddr().(*net.TCPAddr).Port != r.port {
				t.Fatalf("database %s, answer %d, remote %s", db, answer, conn.PgConn().Conn().RemoteAddr())
			}
			// PgBouncer knows our connection as its client, and PostgreSQL
			// sees one of PgBouncer's server connections, not us.
			admin := connect(t, r.admin)
			var client, server bool
			for _, c := range show(t, admin, "SHOW CLIENTS") {
				client = client || (c["database"] == name && c["port"] == strconv.Itoa(local))
			}
			for _, s := range show(t, admin, "SHOW SERVERS") {
				server = server || (s["database"] == name && s["local_port"] == strconv.Itoa(backendClientPort))
			}
			if !client || !server || backendClientPort == local {
				t.Fatalf("client port %d listed: %v; PostgreSQL's client port %d is a PgBouncer server connection: %v",
					local, client, backendClientPort, server)
			}
		})
	}
}

// In transaction mode a server connection goes back to the pool after each
// transaction: a session setting stays on that server connection, where the
// next client finds it, and does not follow the client that made it.
func TestSessionStateDoesNotOutliveTheTransaction(t *testing.T) {
	for _, r := range routes(t) {
		t.Run(r.mode, func(t *testing.T) {
			ctx := context.Background()
			url := r.url(dbtest.Name(t)) // a fresh database: PgBouncer has no server connection to it yet
			a, b := connect(t, url), connect(t, url)
			var pidA, pidB, pidA2 int
			var set string
			if err := a.QueryRow(ctx, `SELECT pg_backend_pid(), set_config('opsmantik.probe', 'a', false)`).Scan(&pidA, &set); err != nil {
				t.Fatal(err)
			}
			tx, err := b.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			var seenByB, seenByA *string
			if err := tx.QueryRow(ctx, `SELECT pg_backend_pid(), current_setting('opsmantik.probe', true)`).Scan(&pidB, &seenByB); err != nil {
				t.Fatal(err)
			}
			if pidB != pidA || seenByB == nil || *seenByB != "a" {
				t.Fatalf("b got backend %d (a's was %d) and sees probe %v: want a's server connection with a's setting", pidB, pidA, deref(seenByB))
			}
			// b holds that server connection in its transaction; a gets another.
			if err := a.QueryRow(ctx, `SELECT pg_backend_pid(), current_setting('opsmantik.probe', true)`).Scan(&pidA2, &seenByA); err != nil {
				t.Fatal(err)
			}
			if pidA2 == pidA || seenByA != nil {
				t.Fatalf("a's next statement ran on backend %d (first %d) and sees probe %v: want another backend without it", pidA2, pidA, deref(seenByA))
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

func TestURLGoesThroughThePoolerOnlyInPoolerMode(t *testing.T) {
	direct, err := pgx.ParseConfig(dbtest.DirectURL("x"))
	if err != nil {
		t.Fatal(err)
	}
	server, err := pgx.ParseConfig(dbtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	if direct.Host != server.Host || direct.Port != server.Port || direct.Database != "x" {
		t.Fatalf("DirectURL %s, server %s", dbtest.DirectURL("x"), dbtest.ServerURL())
	}
	pool := dbtest.New(t)
	cfg := pool.Config().ConnConfig
	mode := dbtest.Pooled()
	t.Logf("pooler mode: %q", mode)
	if mode == "" {
		if dbtest.URL("x") != dbtest.DirectURL("x") || cfg.Port != server.Port {
			t.Fatalf("direct mode: URL %s, DirectURL %s, pool port %d", dbtest.URL("x"), dbtest.DirectURL("x"), cfg.Port)
		}
		return
	}
	if int(cfg.Port) != dbtest.Pooler().Port() || cfg.DefaultQueryExecMode != execModes[mode] {
		t.Fatalf("pooler mode %s: pool on port %d in mode %s, PgBouncer on %d", mode, cfg.Port, cfg.DefaultQueryExecMode, dbtest.Pooler().Port())
	}
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
