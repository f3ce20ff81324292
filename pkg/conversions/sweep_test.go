package conversions_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

// TestTheSweepConvertsSessionsThatQualifiedBeforeTheSettings: sessions
// qualified while the site had no destination and send no more batches;
// once it has one, the sweep creates their rows (at most MaxPerRun a run,
// within the window, one per click) and they are uploaded.
func TestTheSweepConvertsSessionsThatQualifiedBeforeTheSettings(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	ctx := context.Background()
	if _, err := l.pool.Exec(ctx, `UPDATE sites SET google_ads_customer_id = NULL, google_ads_conversion_action = NULL`); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	visits := []visit{
		newVisit("gclid", "Cj0KCQ-late-1", now.Add(-3*time.Hour)),
		newVisit("wbraid", "Cj0KCQ-late-2", now.Add(-2*time.Hour)),
		newVisit("gclid", "Cj0KCQ-late-1", now.Add(-time.Hour)), // a second session of click 1
		newVisit("gbraid", "Cj0KCQ-late-3", now.Add(-30*time.Minute)),
	}
	for _, v := range visits {
		for _, b := range v.batches() {
			l.post(t, b)
		}
	}
	old := newVisit("gclid", "Cj0KCQ-too-old", now.Add(-6*24*time.Hour))
	for _, b := range old.batches() {
		l.post(t, b)
	}
	// Moved two more days back, this visit started eight days ago: outside
	// the sweep's week.
	if _, err := l.pool.Exec(ctx, `UPDATE sessions SET started_at = started_at - interval '2 days' WHERE id = $1`, old.sid); err != nil {
		t.Fatal(err)
	}
	if rows := l.rows(t); len(rows) != 0 {
		t.Fatalf("rows before the settings: %+v", rows)
	}
	if _, err := l.pool.Exec(ctx, `UPDATE sites SET google_ads_customer_id = '1234567890', google_ads_conversion_action = 'Qualified lead'`); err != nil {
		t.Fatal(err)
	}
	sweep := conversions.NewSweeper(l.pool, l.pub, conversions.SweepOptions{RepublishAfter: 5 * time.Minute, MaxPerRun: 2})
	rep, err := sweep.Run(ctx)
	if err != nil || rep.Created != 2 || rep.PublishFailed != 0 || !rep.Published {
		t.Fatalf("first sweep %+v %v, want 2 created (MaxPerRun)", rep, err)
	}
	rep, err = sweep.Run(ctx)
	if err != nil || rep.Created != 1 {
		t.Fatalf("second sweep %+v %v, want the third click", rep, err)
	}
	if rep, err := sweep.Run(ctx); err != nil || rep.Created != 0 || rep.Republished != 0 {
		t.Fatalf("third sweep %+v %v, want nothing", rep, err)
	}
	l.settle(t)
	rows := l.rows(t)
	if len(rows) != 3 {
		t.Fatalf("rows %+v, want one per click", rows)
	}
	var session string
	if err := l.pool.QueryRow(ctx, `SELECT session_id::text FROM conversions WHERE click_id = 'Cj0KCQ-late-1'`).Scan(&session); err != nil || session != visits[0].sid {
		t.Fatalf("click 1 converted with session %s (%v), want its first session %s", session, err, visits[0].sid)
	}
	for _, r := range rows {
		if r.Status != "uploaded" || r.Value != 100 {
			t.Errorf("row %+v", r)
		}
	}
	if n := len(l.ads.Uploads()); n != 3 {
		t.Fatalf("%d uploads, want 3", n)
	}
}

// TestTheSweepWithoutQStashCreatesRowsAndPublishesNothing.
func TestTheSweepWithoutQStashCreatesRowsAndPublishesNothing(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	var logs logBuffer
	s, err := conversions.SweeperFromConfig(pool, config.QStashPublish{Retries: 5}, config.ConversionSweep{RepublishAfter: time.Minute},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Job(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := logs.lines("conversion sweep")
	if len(lines) != 1 || lines[0]["published"] != false || len(logs.lines("QSTASH_TOKEN is not set: conversions are not published and stay pending")) != 1 {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// TestThePublisherRefusesAnEnvironmentThatWouldRedirectIt: qstash-go reads
// QSTASH_URL itself, over what it is given.
func TestThePublisherRefusesAnEnvironmentThatWouldRedirectIt(t *testing.T) {
	t.Setenv("QSTASH_URL", "https://qstash.example")
	_, err := conversions.NewPublisher(nil, config.QStashPublish{URL: "http://127.0.0.1:1", Token: "t", WorkerURL: "http://127.0.0.1:2/"}, conversions.PublisherOptions{})
	if err == nil {
		t.Fatal("a publisher that qstash-go would point elsewhere was made")
	}
	if _, err := conversions.NewPublisher(nil, config.QStashPublish{URL: "https://qstash.example", Token: "t", WorkerURL: "http://127.0.0.1:2/"}, conversions.PublisherOptions{}); err != nil {
		t.Fatalf("the same URL: %v", err)
	}
	if _, err := conversions.NewPublisher(nil, config.QStashPublish{URL: "https://qstash.example"}, conversions.PublisherOptions{}); err == nil {
		t.Fatal("a publisher without a token was made")
	}
}
