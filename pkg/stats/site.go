package stats

import (
	"net/http"

	"github.com/opsmantik/opsmantik/dashboard"
)

// Routes mounts the endpoints on mux: /api/stats and its two data-health
// answers, /api/stats/conversions and /api/stats/audit.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("/api/stats", h)
	mux.Handle("/api/stats/conversions", h.ConversionsHandler())
	mux.Handle("/api/stats/audit", h.AuditHandler())
}

// Site is the stats function's whole Function URL, page and API on one
// origin: the dashboard at GET / (and /dashboard), the API under /api/stats.
// A request to any other path, or to / with a site parameter or a key, is
// /api/stats as before the page existed (docs/stats-api.md's curl example).
func (h *Handler) Site(install dashboard.Install) http.Handler {
	mux := http.NewServeMux()
	h.Routes(mux)
	page := dashboard.Handler(install)
	mux.Handle("GET /dashboard", page)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet && !r.URL.Query().Has("site") && r.Header.Get("Authorization") == "" {
			page.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	return mux
}
