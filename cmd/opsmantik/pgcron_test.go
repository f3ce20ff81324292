package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMigrateSchedulesTheRefreshWithPgCron starts private clusters with
// pg_cron loaded, migrates them with the command line and waits for pg_cron
// itself to run the refresh: once with the app database as
// cron.database_name (cron.schedule), once with another one
// (cron.schedule_in_database).
func TestMigrateSchedulesTheRefreshWithPgCron(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, cronDB, appDB string }{
		{"the app database is pg_cron's", "opsmantik", "opsmantik"},
		{"pg_cron lives in another database", "postgres", "shop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl := startCronCluster(t, c.cronDB)
			appURL := cl.url(c.appDB)
			migrate := func(schedule string) (string, string, error) {
				return opsmantik(t, []string{"DATABASE_URL=" + appURL, "ANALYTICS_REFRESH_SCHEDULE=" + schedule}, "migrate")
			}
			var jobID string
			for run := range 2 { // the second run changes nothing
				stdout, stderr, err := migrate("* * * * *")
				if err != nil {
					t.Fatalf("migrate %d: %v\n%s", run+1, err, stderr)
				}
				want := fmt.Sprintf(`refreshes the daily analytics of database %s on schedule "* * * * *"`, c.appDB)
				if strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(stdout, "pg_cron: job opsmantik-refresh-analytics (id ") || !strings.Contains(stdout, want) {
					t.Fatalf("migrate %d printed %q", run+1, stdout)
				}
				id := strings.SplitN(strings.TrimPrefix(stdout, "pg_cron: job opsmantik-refresh-analytics (id "), ")", 2)[0]
				if run == 1 && id != jobID {
					t.Errorf("the second migrate made job %s, the first %s", id, jobID)
				}
				jobID = id
			}
			cronConn := cl.connect(t, c.cronDB)
			job := func() (n int, schedule, database, command string, active bool) {
				t.Helper()
				err := cronConn.QueryRow(context.Background(), `
					SELECT count(*) OVER (), schedule, database, command, active FROM cron.job WHERE jobname = 'opsmantik-refresh-analytics'`).
					Scan(&n, &schedule, &database, &command, &active)
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if n, schedule, database, command, active := job(); n != 1 || schedule != "* * * * *" || database != c.appDB ||
				command != `SELECT "public".refresh_daily_analytics('pg_cron')` || !active {
				t.Fatalf("cron.job: %d rows, %q %q %q %v", n, schedule, database, command, active)
			}
			// A bad schedule is refused naming the variable; the job stays.
			if _, stderr, err := migrate("every now and then"); err == nil || !strings.Contains(stderr, "ANALYTICS_REFRESH_SCHEDULE") {
				t.Errorf("a bad schedule: %v %s", err, stderr)
			}
			if c.cronDB != c.appDB {
				// A second app database on the server cannot take the job over.
				_, stderr, err := opsmantik(t, []string{"DATABASE_URL=" + cl.url("other"), "ANALYTICS_REFRESH_SCHEDULE=* * * * *"}, "migrate")
				if err == nil || !strings.Contains(stderr, "already refreshes database "+c.appDB) {
					t.Errorf("migrating a second database: %v %s", err, stderr)
				}
			}
			if n, schedule, database, _, _ := job(); n != 1 || schedule != "* * * * *" || database != c.appDB {
				t.Fatalf("cron.job afterwards: %d rows, %q %q", n, schedule, database)
			}

			// pg_cron runs it at the next minute.
			app := cl.connect(t, c.appDB)
			deadline := time.Now().Add(100 * time.Second)
			for {
				var n int
				var rows int64
				if err := app.QueryRow(context.Background(), `
					SELECT count(*), coalesce(max(rows), -1) FROM analytics_refreshes WHERE trigger = 'pg_cron' AND ok`).Scan(&n, &rows); err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					var details string
					_ = cronConn.QueryRow(context.Background(), `SELECT coalesce(string_agg(status || ': ' || return_message, '; '), 'none') FROM cron.job_run_details`).Scan(&details)
					log, _ := os.ReadFile(filepath.Join(cl.dir, "server.log"))
					t.Fatalf("pg_cron did not refresh the view within 100 s; runs: %s\nserver log:\n%s", details, log)
				}
				time.Sleep(time.Second)
			}
			var status string
			if err := cronConn.QueryRow(context.Background(), `
				SELECT status FROM cron.job_run_details WHERE jobid = $1::bigint ORDER BY runid DESC LIMIT 1`, jobID).Scan(&status); err != nil || status != "succeeded" {
				t.Errorf("cron.job_run_details: %q, %v", status, err)
			}
		})
	}
}

// cronCluster is a private PostgreSQL cluster with pg_cron loaded.
type cronCluster struct {
	dir  string
	port int
}

func (c *cronCluster) url(db string) string {
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Host: "127.0.0.1:" + strconv.Itoa(c.port), Path: "/" + db, RawQuery: "sslmode=disable"}).String()
}

func (c *cronCluster) connect(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.url(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// startCronCluster initdbs a cluster into a temporary directory with the
// machine's newest PostgreSQL binaries, with shared_preload_libraries =
// pg_cron and cron.database_name = cronDB, starts it on a free port (as
// user postgres when running as root) and stops it when the test ends.
func startCronCluster(t *testing.T, cronDB string) *cronCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(bins) == 0 {
		t.Fatal("no PostgreSQL binaries under /usr/lib/postgresql (scripts/ensure-postgres.sh installs them)")
	}
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) < pgVersion(bins[j]) })
	bindir := bins[len(bins)-1]
	if _, err := os.Stat(filepath.Join(filepath.Dir(bindir), "lib", "pg_cron.so")); err != nil {
		t.Fatalf("pg_cron is not installed for %s (scripts/ensure-pg-cron.sh installs it): %v", bindir, err)
	}
	dir, err := os.MkdirTemp("", "opsmantik-pgcron-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	asPG := func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asPG = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	run := func(cmd *exec.Cmd) {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	run(asPG(filepath.Join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf(`
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
max_connections = 30
fsync = off
shared_preload_libraries = 'pg_cron'
cron.database_name = '%s'
cron.host = '127.0.0.1'
`, port, dir, cronDB)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(asPG(filepath.Join(bindir, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "start"))
	t.Cleanup(func() {
		_ = asPG(filepath.Join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").Run()
	})
	return &cronCluster{dir: dir, port: port}
}

// pgVersion is the major version in /usr/lib/postgresql/NN/bin.
func pgVersion(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}
