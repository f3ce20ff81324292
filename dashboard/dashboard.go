// Package dashboard is the site owner's page (dashboard/src, built into
// dist/index.html with uPlot bundled in): served by `opsmantik dev` at
// /dashboard and by the stats function at GET /, and shipped by `make
// package`. The built page is committed so that building the Go code needs no
// node_modules; bundle_test.go fails when it differs from the sources.
package dashboard

import (
	"bytes"
	_ "embed"
	"fmt"
	"html"
	"net/http"
	"strings"
)

//go:generate go run ./bundle/generate

//go:embed dist/index.html
var page []byte

// File is the page's name in the deploy artifacts.
const File = "dashboard.html"

// Page is the built page.
func Page() []byte { return page }

// Install says where the tracker script and the sync endpoint are, for the
// install instructions an empty site is shown; empty values mean the page's
// own origin (/ux-core.js, /api/sync), as `opsmantik dev` serves them.
type Install struct {
	TrackerURL string
	SyncURL    string
}

// withInstall puts the install URLs into the page's head as meta tags.
func withInstall(in Install) []byte {
	var metas strings.Builder
	for _, m := range []struct{ name, url string }{{"om-tracker-url", in.TrackerURL}, {"om-sync-url", in.SyncURL}} {
		if m.url != "" {
			fmt.Fprintf(&metas, `<meta name="%s" content="%s">`, m.name, html.EscapeString(m.url))
		}
	}
	if metas.Len() == 0 {
		return page
	}
	return bytes.Replace(page, []byte("<head>"), []byte("<head>"+metas.String()), 1)
}

// Handler serves the page. It talks to /api/stats on its own origin.
func Handler(in Install) http.Handler {
	page := withInstall(in)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		_, _ = w.Write(page)
	})
}
