// Command artifacts builds what `make package` ships into one folder (dist/
// by default): functions/<name> as dist/<name>.zip, a linux/arm64 `bootstrap`
// for Lambda's provided.al2023 runtime, and the minified tracker as
// dist/ux-core.js. serverless.yml points at these files.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opsmantik/opsmantik/pkg/deploy"
)

func main() {
	dist := flag.String("dist", "dist", "output folder, relative to the module root")
	flag.Parse()
	if err := run(context.Background(), *dist); err != nil {
		fmt.Fprintln(os.Stderr, "artifacts:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dist string) error {
	root, err := deploy.Root(".")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(dist) {
		dist = filepath.Join(root, dist)
	}
	artifacts, err := deploy.Artifacts(ctx, root, dist)
	if err != nil {
		return err
	}
	for _, a := range artifacts {
		rel, _ := filepath.Rel(root, a.Path)
		fmt.Printf("artifacts: %-40s %6.2f MB\n", rel, float64(a.Size)/(1<<20))
	}
	rel, _ := filepath.Rel(root, filepath.Join(dist, deploy.TrackerFile))
	fmt.Printf("artifacts: %s\n", rel)
	return nil
}
