package bundle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedPageIsBuiltFromSources rebuilds the page and compares it with
// the committed dashboard/dist/index.html, so that an edit of src/ without
// `go generate ./dashboard` fails here. It needs dashboard/node_modules (npm
// ci in dashboard/; make test's browser step installs it).
func TestCommittedPageIsBuiltFromSources(t *testing.T) {
	if _, err := os.Stat("../node_modules/uplot"); err != nil {
		t.Fatal("dashboard/node_modules is missing: scripts/ensure-dashboard-npm.sh (run by make test) installs it")
	}
	got, err := Build("..")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "dist", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("dashboard/dist/index.html (%d B) is not what dashboard/src builds (%d B): run go generate ./dashboard", len(want), len(got))
	}
}

func TestBuildNeedsUplot(t *testing.T) {
	dir := t.TempDir()
	if _, err := Build(dir); err == nil {
		t.Fatal("Build without node_modules/uplot succeeded")
	}
}
