// Package dashboard is the site owner's page (dashboard/src, built into
// dist/index.html with uPlot bundled in): served by `opsmantik dev` at
// /dashboard and by the stats function at GET /, and shipped by `make
// package`. The built page is committed so that building the Go code needs no
// node_modules; bundle_test.go fails when it differs from the sources.
package dashboard

import (
	_ "embed"
	"net/http"
)

//go:generate go run ./bundle/generate

//go:embed dist/index.html
var page []byte

// File is the page's name in the deploy artifacts.
const File = "dashboard.html"

// Page is the built page.
func Page() []byte { return page }

// Handler serves the page. It talks to /api/stats on its own origin.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		_, _ = w.Write(page)
	})
}
