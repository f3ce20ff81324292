package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/dashboard"
	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/seed"
	"github.com/opsmantik/opsmantik/pkg/sites"
	"github.com/opsmantik/opsmantik/pkg/stats"
	"github.com/opsmantik/opsmantik/tracker"
)

// demoSite is the site `opsmantik dev` makes sure exists.
var demoSite = sites.NewSite{PublicID: "demo", Name: "Demo", Domains: []string{"localhost", "127.0.0.1"}}

func runDev(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("dev takes no arguments (configure it with environment variables)")
	}
	var cfg config.Dev
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	logger := cfg.Log.Logger()
	slog.SetDefault(logger)
	pool, err := database.OpenMigrated(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	demo, err := sites.Ensure(ctx, pool, demoSite)
	if err != nil {
		return err
	}
	if cfg.DemoData {
		if err := seedDemo(ctx, pool, demo.ID); err != nil {
			return err
		}
	}
	// The key is only stored hashed, so dev makes a new one at each start
	// and prints it: the previous start's key stops working.
	demoKey, err := sites.RotateKey(ctx, pool, demoSite.PublicID)
	if err != nil {
		return err
	}
	script, err := tracker.Build()
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	stats.New(pool, logger).Routes(mux) // /api/stats, /api/stats/conversions, /api/stats/audit
	mux.Handle("GET /dashboard", dashboard.Handler(dashboard.Install{}))
	mux.HandleFunc("GET /ux-core.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(script)
	})
	mux.HandleFunc("GET /{$}", serveDemoPage)
	// Listen before the scheduled jobs start, so that the server answers by
	// the time their first run is logged.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on OPSMANTIK_ADDR %s: %w", cfg.Addr, err)
	}
	// /api/sync-google-ads, the local QStash and the publisher (dev_conversions.go).
	pub, stopLoop, err := startConversionLoop(ctx, &cfg, pool, logger, mux, ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	defer stopLoop()
	syncHandler := ingest.New(pool, ingest.WithPublisher(pub))
	mux.Handle("/api/sync", syncHandler)
	// /api/test-notification and the scheduled jobs (jobs.go).
	if err := startAlerting(ctx, &cfg, pool, logger, mux, pub); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("opsmantik dev: serving", "url", "http://"+ln.Addr().String(), "sync", "/api/sync", "stats", "/api/stats", "tracker", "/ux-core.js", "sync_google_ads", syncGoogleAdsPath)
	fmt.Printf("OpsMantik is running at http://%s (demo page), ingest at /api/sync. Ctrl-C stops it.\n", ln.Addr())
	fmt.Printf("Dashboard: http://%s/dashboard?site=%s  site %s, API key %s (a new key at each start)\n", ln.Addr(), demoSite.PublicID, demoSite.PublicID, demoKey)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := syncHandler.Shutdown(shutdownCtx); err != nil {
		logger.Warn("opsmantik dev: the last ingest counters were not written", "err", err)
	}
	logger.Info("opsmantik dev: stopped")
	return nil
}

// Demo data: enough sessions for a full dashboard, written in a few seconds.
const (
	demoSessions = 20000
	demoDays     = 90
)

// seedDemo gives the demo site 90 days of sample data on the first start,
// that is while it has no session at all; later starts (and the visitor's
// own clicks on the demo page, which appear in "today") keep what is there.
func seedDemo(ctx context.Context, pool *pgxpool.Pool, siteID int64) error {
	var has bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE site_id = $1)`, siteID).Scan(&has); err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	if has {
		return nil
	}
	sum, err := seed.Run(ctx, pool, seed.Options{SiteID: siteID, Sessions: demoSessions, Days: demoDays, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	fmt.Printf("First start: gave the demo site %d days of sample data (%d sessions, %s..%s); OPSMANTIK_DEMO_DATA=false skips this.\n", demoDays, sum.Sessions, sum.From, sum.To)
	return nil
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OpsMantik demo</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}a,button{margin:.25rem 0}</style>
</head>
<body>
<h1>OpsMantik demo shop</h1>
<p>This page loads the tracker from <code>/ux-core.js</code> and sends to <code>{{.API}}</code>.</p>
<p>To see the Google Ads loop, open <a id="adclick" href="/?gclid={{.Click}}">this page as from an ad click</a>, call and send the form: the log shows the upload.</p>
<p><a id="phone" href="tel:+905551112233">Call +90 555 111 22 33</a></p>
<p><a id="whatsapp" href="https://wa.me/905551112233">Message us on WhatsApp</a></p>
<form id="contact" name="contact" action="#" onsubmit="event.preventDefault()">
<label>Name <input name="name"></label>
<button id="submit" type="submit">Send</button>
</form>
<div style="height:200vh"></div>
<p id="bottom">End of page.</p>
<script async src="/ux-core.js" data-site="demo" data-api="{{.API}}"></script>
</body>
</html>
`))

func serveDemoPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// A new click id each time: a click converts once.
	_ = demoPage.Execute(w, struct{ API, Click string }{API: "http://" + r.Host + "/api/sync", Click: "demo-" + uuid.NewString()})
}
