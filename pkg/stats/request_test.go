package stats_test

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

func TestParseRequest(t *testing.T) {
	for _, c := range []struct {
		query string
		want  stats.Request
		bad   bool
	}{
		{"period=today", stats.Request{Period: "today"}, false},
		{"period=90d&traffic_source=google_ads&device_type=tablet&x=1", stats.Request{Period: "90d", TrafficSource: "google_ads", DeviceType: "tablet"}, false},
		{"from=0001-01-01&to=0001-01-01", stats.Request{From: "0001-01-01", To: "0001-01-01"}, false},
		{"from=9999-12-31&to=9999-12-31", stats.Request{From: "9999-12-31", To: "9999-12-31"}, false},
		{"from=2024-02-29&to=2024-03-01", stats.Request{From: "2024-02-29", To: "2024-03-01"}, false},
		{"from=2024-12-31&to=2026-02-03", stats.Request{From: "2024-12-31", To: "2026-02-03"}, false}, // 400 days
		{"from=2024-12-31&to=2026-02-04", stats.Request{}, true},                                      // 401
		{"period=90D", stats.Request{}, true},
		{"period=today&period=today", stats.Request{}, true},
		{"from=+2025-01-01&to=2025-01-02", stats.Request{}, true},
		{"from=2025-01-01 &to=2025-01-02", stats.Request{}, true},
		{"to=2025-01-01&traffic_source=Direct&period=7d", stats.Request{}, true},
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := stats.ParseRequest(q)
		var ir *stats.InvalidRangeError
		if c.bad != (err != nil) || (err != nil && !errors.As(err, &ir)) || (!c.bad && got != c.want) {
			t.Errorf("%q: %+v, %v", c.query, got, err)
		}
	}
}

// The filter values are the ones the ingest path writes.
func TestFilterValuesAreTheServers(t *testing.T) {
	sources := []string{ingest.SourceGoogleAds, ingest.SourcePaid, ingest.SourceOrganicSearch, ingest.SourceSocial, ingest.SourceReferral, ingest.SourceDirect}
	devices := []string{ingest.DeviceMobile, ingest.DeviceTablet, ingest.DeviceDesktop, ingest.DeviceUnknown}
	if !slices.Equal(sources, stats.TrafficSources) || !slices.Equal(devices, stats.DeviceTypes) {
		t.Errorf("stats has %v and %v; ingest writes %v and %v", stats.TrafficSources, stats.DeviceTypes, sources, devices)
	}
}

// FuzzParseRequest: any query is either refused as invalid_range or is a
// range of 1 to 400 days (or a known period) with known filters.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"period=7d", "from=2025-01-01&to=2025-02-01", "from=2025-02-01&to=2025-01-01", "period=today&device_type=mobile",
		"from=2024-12-31&to=2026-02-04", "traffic_source=%00&period=30d", "from=2025-13-01&to=2025-13-02"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		r, err := stats.ParseRequest(q)
		if err != nil {
			var ir *stats.InvalidRangeError
			if !errors.As(err, &ir) || ir.Detail == "" {
				t.Fatalf("%q: %v is not an invalid_range", query, err)
			}
			return
		}
		if r.TrafficSource != "" && !slices.Contains(stats.TrafficSources, r.TrafficSource) ||
			r.DeviceType != "" && !slices.Contains(stats.DeviceTypes, r.DeviceType) {
			t.Fatalf("%q: accepted filters %+v", query, r)
		}
		if r.Period != "" {
			if !slices.Contains([]string{"today", "7d", "30d", "90d"}, r.Period) || r.From != "" || r.To != "" {
				t.Fatalf("%q: accepted %+v", query, r)
			}
			return
		}
		from, err1 := time.Parse("2006-01-02", r.From)
		to, err2 := time.Parse("2006-01-02", r.To)
		if err1 != nil || err2 != nil || to.Before(from) || to.Sub(from) > 399*24*time.Hour {
			t.Fatalf("%q: accepted %+v", query, r)
		}
	})
}
