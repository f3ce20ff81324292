package leadscore_test

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/leadscore"
	migrations "github.com/opsmantik/opsmantik/sql"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestGeneratedColumnIsTheWeightsTable holds the migration that defines
// sessions.lead_score to the SQL rendered from the weights table: the newest
// migration that mentions the generated column must contain it verbatim.
func TestGeneratedColumnIsTheWeightsTable(t *testing.T) {
	want := leadscore.Default().SQL(leadscore.SessionColumns)
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var newest, text string
	for _, f := range files {
		b, err := fs.ReadFile(migrations.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "lead_score smallint GENERATED ALWAYS AS") {
			newest, text = f, string(b)
		}
	}
	if newest == "" {
		t.Fatal("no migration defines the generated lead_score column")
	}
	if !strings.Contains(text, want) {
		t.Fatalf("%s does not hold the score rendered from the weights table; put this in a new migration:\n%s", newest, want)
	}
}

// TestPostgresScoresAsGo is the generated column against Score on random
// sessions, the tier edges and the caps included.
func TestPostgresScoresAsGo(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO sites (public_id) VALUES ('s')`); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	edges := []int64{0, 1, 2, 3, 4, 5, 29_999, 30_000, 119_999, 120_000, 299_999, 300_000, 49, 50, 89, 90, 100}
	pick := func(max int64) int64 {
		if rng.IntN(2) == 0 {
			return edges[rng.IntN(len(edges))] % (max + 1)
		}
		return rng.Int64N(max + 1)
	}
	for i := range 400 {
		s := leadscore.Session{
			PhoneClicks: int(pick(7)), WhatsAppClicks: int(pick(7)), FormSubmits: int(pick(7)),
			EngagedMS: pick(400_000), MaxScroll: int(pick(100)), Pageviews: int(pick(9)), Returning: rng.IntN(2) == 0,
		}
		bot := i%10 == 0
		var got int
		err := pool.QueryRow(ctx, `
			INSERT INTO sessions (site_id, id, started_at, last_seen_at, last_active_at, traffic_source, device_type,
			                      phone_clicks, whatsapp_clicks, form_submits, engaged_ms, max_scroll, pageviews, is_returning, is_bot)
			SELECT id, gen_random_uuid(), now(), now(), now(), 'direct', 'desktop', $1, $2, $3, $4, $5, $6, $7, $8 FROM sites
			RETURNING lead_score`,
			s.PhoneClicks, s.WhatsAppClicks, s.FormSubmits, s.EngagedMS, s.MaxScroll, s.Pageviews, s.Returning, bot).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		want := leadscore.Score(s)
		if bot {
			want = 0
		}
		if got != want {
			t.Fatalf("%+v bot=%v: PostgreSQL scores %d, Go %d", s, bot, got, want)
		}
	}
}
