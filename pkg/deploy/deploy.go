// Package deploy builds what `make package` ships: one `bootstrap` zip per
// folder under functions/, the minified tracker and the dashboard page, side by side in dist/,
// for serverless.yml to reference. Tests build the same binaries for the
// host to run them through the Lambda Runtime API (see pkg/lambdatest).
package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/opsmantik/opsmantik/dashboard"
	"github.com/opsmantik/opsmantik/tracker"
)

// LambdaArch is the architecture serverless.yml deploys (Graviton).
const LambdaArch = "arm64"

// TrackerFile is the name of the minified tracker beside the zips.
const TrackerFile = "ux-core.js"

// Artifact is one built zip.
type Artifact struct {
	Function string // folder name under functions/
	Path     string
	Size     int64 // bytes
}

// Root returns the module root: dir or the nearest parent holding go.mod.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above", dir)
		}
	}
}

// Functions lists the folders under root/functions that hold a main.go,
// sorted: each is one Lambda function.
func Functions(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", e.Name(), "main.go")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// BuildBootstraps compiles every function in names for linux/goarch the way
// Lambda's provided.al2023 runtime wants it (static, no RPC mode, stripped)
// and writes each as dir/<name>/bootstrap. One `go build` builds them all,
// so shared packages compile once.
func BuildBootstraps(ctx context.Context, root, goarch, dir string, names []string) error {
	if len(names) == 0 {
		return errors.New("no functions to build")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", tmp + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./functions/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build (linux/%s): %w\n%s", goarch, err, out.String())
	}
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(dir, n, "bootstrap")); err != nil {
			return fmt.Errorf("build %s: %w", n, err)
		}
	}
	return nil
}

// ZipBootstrap writes a Lambda deployment zip at zipPath holding the file
// bootstrap as an executable named "bootstrap" at the zip's root.
func ZipBootstrap(bootstrap, zipPath string) error {
	bin, err := os.Open(bootstrap)
	if err != nil {
		return err
	}
	defer bin.Close()
	f, err := os.Create(zipPath)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	// A fixed timestamp makes unchanged code give a byte-identical zip, so
	// deploying it again changes nothing.
	modified := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: modified}
	hdr.SetMode(0o755) // also marks the entry as made on Unix, so the mode is kept
	w, err := zw.CreateHeader(hdr)
	if err == nil {
		_, err = io.Copy(w, bin)
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("zip %s: %w", zipPath, err)
	}
	return nil
}

// DashboardFile is the name of the dashboard page beside the zips (the stats
// function also serves it at GET /; this copy is for a static host or a CDN).
const DashboardFile = dashboard.File

// WriteDashboard writes the built dashboard page as dist/dashboard.html.
func WriteDashboard(dist string) (string, error) {
	path := filepath.Join(dist, DashboardFile)
	return path, os.WriteFile(path, dashboard.Page(), 0o644)
}

// WriteTracker writes the minified tracker as dist/ux-core.js.
func WriteTracker(dist string) (string, error) {
	js, err := tracker.Build()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dist, TrackerFile)
	return path, os.WriteFile(path, js, 0o644)
}

// Artifacts builds every function for Lambda (linux/arm64) into
// dist/<name>.zip and writes the minified tracker beside them. dist is made
// if missing; zips of functions that no longer exist are removed.
func Artifacts(ctx context.Context, root, dist string) ([]Artifact, error) {
	names, err := Functions(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return nil, err
	}
	stale, _ := filepath.Glob(filepath.Join(dist, "*.zip"))
	for _, z := range stale {
		os.Remove(z)
	}
	bins, err := os.MkdirTemp(dist, ".bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bins)
	if err := BuildBootstraps(ctx, root, LambdaArch, bins, names); err != nil {
		return nil, err
	}
	artifacts := make([]Artifact, 0, len(names))
	for _, n := range names {
		zipPath := filepath.Join(dist, n+".zip")
		if err := ZipBootstrap(filepath.Join(bins, n, "bootstrap"), zipPath); err != nil {
			return nil, err
		}
		st, err := os.Stat(zipPath)
		if err != nil {
			return nil, err
		}
		artifacts = append(artifacts, Artifact{Function: n, Path: zipPath, Size: st.Size()})
	}
	if _, err := WriteTracker(dist); err != nil {
		return nil, err
	}
	if _, err := WriteDashboard(dist); err != nil {
		return nil, err
	}
	return artifacts, nil
}
