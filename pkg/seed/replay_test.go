package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/ingest"
)

// The seed writes what the ingest path would have stored: every seeded
// session, sent as the tracker would send it through the real sync handler
// into another database, gives the same rows. Left out of the comparison:
// the times of arrival (created_at, updated_at, received_at), and what only
// later heartbeats tell (last_seen_at of an idle tab, clock_skew_ms of a
// skewed clock), which the single replayed batch does not carry.
func TestSeededRowsEqualTheIngestPathsRows(t *testing.T) {
	ctx := context.Background()
	seeded, replayed := dbtest.New(t), dbtest.New(t)
	for _, pool := range []*pgxpool.Pool{seeded, replayed} {
		addSite(t, pool, "demo", "Europe/Istanbul")
	}
	o := Options{PublicID: "demo", Sessions: 400, Days: 3, Seed: 11, Now: testNow, Chunk: 128}
	run(t, seeded, o)

	site, loc, err := lookUpSite(ctx, replayed, o)
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(o.Seed, site, loc, o.Now.Truncate(time.Millisecond), o.Days, o.Sessions)
	var c chunk
	g.fill(&c, int(o.Sessions))
	if len(c.sessions) != int(o.Sessions) {
		t.Fatalf("generated %d sessions, want %d", len(c.sessions), o.Sessions)
	}
	var clock time.Time
	h := ingest.New(replayed, ingest.WithClock(func() time.Time { return clock }), ingest.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	first := 0
	for i := range c.sessions {
		s := &c.sessions[i]
		events := c.events[first : first+int(s.events)]
		first += int(s.events)
		clock = time.UnixMilli(s.lastActive).Add(time.Second)
		body := trackerBatch(t, site.publicID, s, events)
		req := httptest.NewRequest(http.MethodPost, "/api/sync", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.Header.Set("Origin", "https://shop.example")
		req.Header.Set("User-Agent", s.ua)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp struct {
			OK       bool `json:"ok"`
			Accepted int  `json:"accepted"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 || resp.Accepted != len(events)+1 {
			t.Fatalf("session %d: %d %s", i, rec.Code, rec.Body)
		}
	}

	const sessionsSQL = `
		SELECT to_jsonb(s) - 'created_at' - 'updated_at' - 'last_seen_at' - 'clock_skew_ms' FROM sessions s ORDER BY id`
	const eventsSQL = `SELECT to_jsonb(e) - 'received_at' FROM events e ORDER BY id`
	for _, q := range []string{sessionsSQL, eventsSQL} {
		want, got := rowsJSON(t, seeded, q), rowsJSON(t, replayed, q)
		if len(want) != len(got) {
			t.Fatalf("%d rows seeded, %d through the ingest path (%s)", len(want), len(got), q)
		}
		diffs := 0
		for i := range want {
			if want[i] != got[i] {
				diffs++
				if diffs <= 3 {
					t.Errorf("row %d differs:\n seeded: %s\n ingest: %s", i, want[i], got[i])
				}
			}
		}
		if diffs > 0 {
			t.Errorf("%d of %d rows differ", diffs, len(want))
		}
	}
	// The idle tabs' last_seen_at is later than anything the replay sent.
	if n := count(t, seeded, `SELECT count(*) FROM sessions WHERE last_seen_at > last_active_at`); n == 0 {
		t.Error("no seeded session was seen after its last activity")
	}
}

// trackerBatch is one protocol batch with all of a session's events and one
// active heartbeat at its last activity carrying its engaged time and scroll.
func trackerBatch(t *testing.T, site string, s *session, events []event) []byte {
	t.Helper()
	evs := make([]map[string]any, 0, len(events)+1)
	for _, e := range events {
		m := map[string]any{}
		if err := json.Unmarshal(e.data, &m); err != nil {
			t.Fatal(err)
		}
		m["id"], m["type"], m["ts"], m["url"] = e.id.String(), e.typ, e.at, e.url
		evs = append(evs, m)
	}
	evs = append(evs, map[string]any{
		"id": uuid.NewString(), "type": "heartbeat", "ts": s.lastActive,
		"active_ms": s.engagedMS, "scroll": s.maxScroll, "state": "active",
	})
	b := map[string]any{
		"v": 1, "site": site, "sid": s.id.String(), "failures": 0, "channel": "primary",
		"ctx": map[string]any{
			"url": s.landingURL, "referrer": s.referrer, "gclid": s.gclid, "wbraid": s.wbraid, "gbraid": s.gbraid,
			"utm_source": s.utmSource, "utm_medium": s.utmMedium, "utm_campaign": s.utmCampaign,
			"utm_term": s.utmTerm, "utm_content": s.utmContent,
			"lang": s.lang, "tz": s.tz, "sw": s.sw, "sh": s.sh,
		},
		"events": evs,
	}
	if s.hasVisitor {
		b["vid"] = s.visitor.String()
	}
	body, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func rowsJSON(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var s string
		err := r.Scan(&s)
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
