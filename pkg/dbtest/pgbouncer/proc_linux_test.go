package pgbouncer

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// PgBouncer refuses to run as root, so a root test run starts it as postgres.
func TestPgBouncerNeverRunsAsRoot(t *testing.T) {
	b, err := Start(context.Background(), Options{Server: nowhere})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var uid int
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			fmt.Sscan(strings.TrimPrefix(line, "Uid:"), &uid)
		}
	}
	want := os.Geteuid()
	if want == 0 {
		want = -1 // anyone but root
	}
	if uid == 0 || (want >= 0 && uid != want) {
		t.Fatalf("PgBouncer runs as uid %d (this process: %d)", uid, os.Geteuid())
	}
}
