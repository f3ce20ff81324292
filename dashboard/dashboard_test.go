package dashboard

import (
	"bytes"
	"compress/gzip"
	"net/http/httptest"
	"strings"
	"testing"
)

// sizeBudget is issue 14's limit for the whole page (HTML, CSS and JS, uPlot
// included), gzipped.
const sizeBudget = 60 * 1024

func gzipSize(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

func TestPageFitsSizeBudget(t *testing.T) {
	gz := gzipSize(t, Page())
	t.Logf("dashboard: %d B, gzipped %d B (budget %d B)", len(Page()), gz, sizeBudget)
	if gz > sizeBudget {
		t.Fatalf("the page gzipped is %d bytes, over the %d-byte budget", gz, sizeBudget)
	}
}

func TestPageIsSelfContained(t *testing.T) {
	p := Page()
	for _, want := range []string{"<!doctype html>", "uplot", "/api/stats", "Intl.NumberFormat", "sessionStorage", "localStorage"} {
		if !bytes.Contains(p, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Nothing is loaded from elsewhere: no CDN, no external script or sheet.
	for _, bad := range []string{"/*CSS*/", "/*JS*/", "<script src", "stylesheet", "https://cdn", "//unpkg", "jsdelivr"} {
		if bytes.Contains(p, []byte(bad)) {
			t.Errorf("the page contains %q", bad)
		}
	}
}

func TestHandlerServesThePage(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(Install{}).ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" || !bytes.Equal(rec.Body.Bytes(), Page()) {
		t.Fatalf("status %d, type %q, %d bytes; want 200 text/html with the page", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

// TestHandlerNamesTheDeployedURLs: with the deployment's URLs the page's head
// carries them (escaped) for the install instructions; without, it is the
// committed page unchanged.
func TestHandlerNamesTheDeployedURLs(t *testing.T) {
	rec := httptest.NewRecorder()
	in := Install{TrackerURL: "https://cdn.shop.example/ux-core.js", SyncURL: `https://abc.lambda-url.eu-central-1.on.aws/?a="b"`}
	Handler(in).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`<head><meta name="om-tracker-url" content="https://cdn.shop.example/ux-core.js">`,
		`<meta name="om-sync-url" content="https://abc.lambda-url.eu-central-1.on.aws/?a=&#34;b&#34;">`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("page head lacks %s", want)
		}
	}
	if len(body) <= len(Page()) || !strings.Contains(string(Page()), "om-tracker-url") {
		t.Fatal("the page does not read the meta tags")
	}
}
