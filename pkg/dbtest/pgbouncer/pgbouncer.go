// Package pgbouncer runs a private PgBouncer in transaction mode in front of a
// PostgreSQL server, so that tests and benchmarks can prove the code works
// behind a real transaction-mode pooler.
//
// It uses the machine's pgbouncer binary (Debian's package;
// scripts/ensure-pgbouncer.sh installs it), listens on a free port on
// 127.0.0.1 only and keeps its configuration, log and pid file in a
// temporary directory that Stop removes.
package pgbouncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultBinary is where Debian's pgbouncer package installs the daemon.
const DefaultBinary = "/usr/sbin/pgbouncer"

// Options configure Start. Only Server is required.
type Options struct {
	// Server is a URL of the PostgreSQL server (any database on it). Its
	// host, port, user and password are what PgBouncer connects with.
	Server string
	// Binary is the pgbouncer executable; DefaultBinary, else "pgbouncer"
	// on PATH, when empty.
	Binary string
	// PoolSize is the number of server connections per database and user
	// (default_pool_size); 10 when zero.
	PoolSize int
	// MaxClients is max_client_conn; 500 when zero.
	MaxClients int
	// StartTimeout bounds the wait for the listener; 10 s when zero.
	StartTimeout time.Duration
}

// Bouncer is a running PgBouncer.
type Bouncer struct {
	cmd  *exec.Cmd
	dir  string
	port int
	user string
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit status, set before done closes
}

// configTemplate is the whole configuration. The wildcard database makes
// every database on the server reachable, so per-test databases work without
// a reload. Transaction mode is the point; the rest keeps a test run's
// thousands of short-lived databases cheap: idle server connections and
// automatic database entries go away quickly, and a failed server login
// blocks its pool for 1 s instead of 15. Only extra_float_digits is ignored
// among startup parameters, as in the usual production setup: a client that
// sends others (statement_timeout, search_path …) is refused, as it would be
// by a production PgBouncer.
const configTemplate = `[databases]
* = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = %s
pool_mode = transaction
max_client_conn = %d
default_pool_size = %d
server_idle_timeout = 30
server_login_retry = 1
autodb_idle_timeout = 30
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`

// Start launches PgBouncer and returns once it accepts connections. When the
// process runs as root it starts PgBouncer as user postgres, because
// PgBouncer refuses to run as root.
func Start(ctx context.Context, opt Options) (*Bouncer, error) {
	server, err := pgconn.ParseConfig(opt.Server)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: parse server URL: %w", err)
	}
	bin, err := findBinary(opt.Binary)
	if err != nil {
		return nil, err
	}
	runAs, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	attr, err := sysProcAttr(runAs)
	if err != nil {
		return nil, err
	}
	if opt.PoolSize <= 0 {
		opt.PoolSize = 10
	}
	if opt.MaxClients <= 0 {
		opt.MaxClients = 500
	}
	if opt.StartTimeout <= 0 {
		opt.StartTimeout = 10 * time.Second
	}
	dir, err := os.MkdirTemp("", "opsmantik-pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	// A port picked by the kernel may be taken again before PgBouncer binds
	// it; try a few.
	for attempt := 0; ; attempt++ {
		b, err := start(ctx, bin, dir, server, opt, runAs, attr)
		if err == nil {
			return b, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "in use") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func start(ctx context.Context, bin, dir string, server *pgconn.Config, opt Options, runAs *user.User, attr *syscall.SysProcAttr) (*Bouncer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"userlist.txt": fmt.Sprintf("%s %s\n", quote(server.User), quote(server.Password)),
		"pgbouncer.ini": fmt.Sprintf(configTemplate, serverConnString(server), port,
			filepath.Join(dir, "userlist.txt"), server.User, opt.MaxClients, opt.PoolSize,
			filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid")),
	}
	_ = os.Remove(filepath.Join(dir, "pgbouncer.log"))
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
	}
	if runAs != nil {
		if err := chownAll(dir, runAs); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = attr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgbouncer: start %s: %w", bin, err)
	}
	b := &Bouncer{cmd: cmd, dir: dir, port: port, user: server.User, done: make(chan struct{})}
	go func() { b.err = cmd.Wait(); close(b.done) }()

	deadline := time.Now().Add(opt.StartTimeout)
	for {
		select {
		case <-b.done:
			return nil, fmt.Errorf("pgbouncer: exited at start (%v): %s%s", b.err, out.String(), b.logTail())
		default:
		}
		if c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond); err == nil {
			c.Close()
			return b, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.kill()
			return nil, fmt.Errorf("pgbouncer: not listening on %s after %v: %s%s", b.Addr(), opt.StartTimeout, out.String(), b.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the host:port PgBouncer listens on.
func (b *Bouncer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// Port is the port PgBouncer listens on.
func (b *Bouncer) Port() int { return b.port }

// URL returns a URL for database through PgBouncer with pgx's
// default_query_exec_mode set to mode ("exec", "simple_protocol"; none when
// empty).
func (b *Bouncer) URL(database, mode string) string {
	q := url.Values{"sslmode": {"disable"}}
	if mode != "" {
		q.Set("default_query_exec_mode", mode)
	}
	u := url.URL{Scheme: "postgres", User: url.User(b.user), Host: b.Addr(), Path: "/" + database, RawQuery: q.Encode()}
	return u.String()
}

// AdminURL is the URL of PgBouncer's admin console (SHOW POOLS, SHOW
// CLIENTS …), which speaks only the simple query protocol.
func (b *Bouncer) AdminURL() string { return b.URL("pgbouncer", "simple_protocol") }

// Log returns what PgBouncer has logged so far.
func (b *Bouncer) Log() string {
	raw, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(raw)
}

func (b *Bouncer) logTail() string {
	l := b.Log()
	if len(l) > 2000 {
		l = "…" + l[len(l)-2000:]
	}
	if l == "" {
		return ""
	}
	return "\nlog:\n" + l
}

// Stop shuts PgBouncer down (SIGTERM, then SIGKILL after 5 s) and removes
// its directory. Calling it again does nothing.
func (b *Bouncer) Stop() error {
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			b.kill()
		}
	}
	return os.RemoveAll(b.dir)
}

func (b *Bouncer) kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// serverConnString is the libpq-style connection string PgBouncer uses for
// the server; the user comes from each client, the password from auth_file.
func serverConnString(c *pgconn.Config) string {
	return fmt.Sprintf("host=%s port=%d", c.Host, c.Port)
}

// quote makes s an auth_file field: double quotes, inner ones doubled.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func findBinary(bin string) (string, error) {
	if bin == "" {
		if _, err := os.Stat(DefaultBinary); err == nil {
			return DefaultBinary, nil
		}
		bin = "pgbouncer"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("pgbouncer: %s not found (scripts/ensure-pgbouncer.sh installs Debian's pgbouncer package): %w", bin, err)
	}
	return path, nil
}

// unprivilegedUser is the user PgBouncer must run as: nil (this process's
// user) unless this process is root.
func unprivilegedUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: refuses to run as root and there is no user postgres to run it as: %w", err)
	}
	return u, nil
}

func chownAll(dir string, u *user.User) error {
	uid, gid, err := ids(u)
	if err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}

func ids(u *user.User) (uid, gid int, err error) {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("pgbouncer: user %s: %w", u.Username, err)
	}
	return uid, gid, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgbouncer: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
