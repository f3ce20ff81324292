// Package bundle builds the dashboard page (dashboard/src) into one
// self-contained HTML file with esbuild: main.js with uPlot from
// dashboard/node_modules bundled in, its CSS and the page's own inlined. It
// is used by `go generate ./dashboard` and by the test that checks the
// committed dashboard/dist/index.html against the sources; nothing else
// needs node_modules.
package bundle

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Placeholders in src/index.html that the build replaces.
const (
	cssMark = "/*CSS*/"
	jsMark  = "/*JS*/"
)

// Build bundles the page from dir (the dashboard folder: src/ and
// node_modules/) and returns the HTML.
func Build(dir string) ([]byte, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build dashboard: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "uplot", "package.json")); err != nil {
		return nil, fmt.Errorf("build dashboard: uplot is not installed in %s (run npm ci there): %w", filepath.Join(dir, "node_modules"), err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "src", "index.html"))
	if err != nil {
		return nil, fmt.Errorf("build dashboard: %w", err)
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{filepath.Join(dir, "src", "main.js")},
		Bundle:            true,
		Write:             false,
		Outdir:            filepath.Join(dir, "out"), // names the outputs; nothing is written
		Format:            api.FormatIIFE,
		Target:            api.ES2020,
		Platform:          api.PlatformBrowser,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsNone,
		NodePaths:         []string{filepath.Join(dir, "node_modules")},
		AbsWorkingDir:     dir,
		LogLevel:          api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		msgs := make([]string, len(res.Errors))
		for i, m := range res.Errors {
			msgs[i] = m.Text
		}
		return nil, fmt.Errorf("build dashboard: %s", strings.Join(msgs, "; "))
	}
	var js, css []byte
	for _, f := range res.OutputFiles {
		switch filepath.Ext(f.Path) {
		case ".js":
			js = f.Contents
		case ".css":
			css = f.Contents
		}
	}
	if js == nil || css == nil {
		return nil, fmt.Errorf("build dashboard: esbuild gave %d files, want one .js and one .css", len(res.OutputFiles))
	}
	for _, m := range []string{cssMark, jsMark} {
		if bytes.Count(html, []byte(m)) != 1 {
			return nil, fmt.Errorf("build dashboard: src/index.html must hold %s exactly once", m)
		}
	}
	// The script must not close its own <script> element early.
	js = bytes.ReplaceAll(js, []byte("</script"), []byte(`<\/script`))
	css = bytes.TrimSpace(css)
	html = bytes.Replace(html, []byte(cssMark), css, 1)
	html = bytes.Replace(html, []byte(jsMark), bytes.TrimSpace(js), 1)
	return html, nil
}
