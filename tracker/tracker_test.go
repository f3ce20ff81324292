package tracker

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// sizeBudget is issue 3's limit for the minified, gzipped script.
const sizeBudget = 3000

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

func TestBuildFitsSizeBudget(t *testing.T) {
	min, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	gz := gzipSize(t, min)
	t.Logf("ux-core.js: source %d B, minified %d B, minified+gzip %d B (budget %d B)", len(Source()), len(min), gz, sizeBudget)
	if gz > sizeBudget {
		t.Fatalf("minified+gzip is %d bytes, over the %d-byte budget", gz, sizeBudget)
	}
	if len(min) >= len(Source()) {
		t.Fatalf("minified (%d B) is not smaller than the source (%d B)", len(min), len(Source()))
	}
}

func TestBuildKeepsProtocolNames(t *testing.T) {
	min, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	// Names the server and the page rely on must survive minification.
	for _, name := range []string{"opsmantik", "failoverApi", "nextProbeAt", "sent_at", "active_ms", "text/plain;charset=UTF-8", "sendBeacon", "keepalive"} {
		if !bytes.Contains(min, []byte(name)) {
			t.Errorf("minified script lacks %q", name)
		}
	}
}
