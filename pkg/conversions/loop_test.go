package conversions_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
	"github.com/opsmantik/opsmantik/pkg/ingest"
)

// TestTheLoopUploadsAQualifiedClickOnceWithTheExactFields: tracker batches
// qualify a session from an ad click; one outbox row, one signed delivery,
// exactly one upload with the fields Google needs, and the row uploaded.
func TestTheLoopUploadsAQualifiedClickOnceWithTheExactFields(t *testing.T) {
	for _, kind := range []string{"gclid", "wbraid", "gbraid"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			l := newLoop(t, loopOptions{})
			v := newVisit(kind, "Cj0KCQ-"+kind+"-1", time.Now().Add(-2*time.Minute).Truncate(time.Second))
			for _, b := range v.batches() {
				l.post(t, b)
			}
			l.settle(t)

			rows := l.rows(t)
			if len(rows) != 1 {
				t.Fatalf("outbox %+v, want one row", rows)
			}
			r := rows[0]
			if r.Status != "uploaded" || r.Destination != "google_ads" || r.ClickType != kind || r.Attempts != 1 || r.DryRun ||
				r.MessageID == "" || r.UploadedAt == nil || r.Claimed || r.Value != 100 {
				t.Fatalf("row %+v, want uploaded after one attempt, with its message id", r)
			}
			pubs := l.q.Publishes()
			if len(pubs) != 1 || pubs[0].Destination != l.workerURL || string(pubs[0].Body) != `{"conversion_id":"`+r.ID+`"}` ||
				pubs[0].Header.Get("Upstash-Deduplication-Id") != r.ID || pubs[0].Header.Get("Upstash-Retries") != "5" || pubs[0].MessageID != r.MessageID {
				t.Fatalf("publishes %+v", pubs)
			}
			attempts := l.q.Attempts()
			if len(attempts) != 1 || attempts[0].Status != 200 || attempts[0].Header.Get("Upstash-Signature") == "" {
				t.Fatalf("attempts %+v, want one signed delivery answered 200", attempts)
			}
			ups := l.ads.Uploads()
			if len(ups) != 1 {
				t.Fatalf("uploads %+v, want exactly one", ups)
			}
			c := ups[0].Conversion
			clicks := map[string]string{"gclid": c.Gclid, "wbraid": c.Wbraid, "gbraid": c.Gbraid}
			for k, got := range clicks {
				if want := map[bool]string{true: "Cj0KCQ-" + kind + "-1"}[k == kind]; got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if ups[0].CustomerID != customerID || c.ConversionAction != actionRes || c.ConversionValue == nil || *c.ConversionValue != 100 ||
				c.CurrencyCode != "TRY" || c.ConversionDateTime != wireTime(v.convertedAt()) || c.OrderID != r.ID || c.Consent != nil {
				t.Errorf("upload %+v (value %v), want customer %s, %s, 100 TRY at %s, order id %s, no consent",
					ups[0], c.ConversionValue, customerID, actionRes, wireTime(v.convertedAt()), r.ID)
			}
			if !strings.HasSuffix(c.ConversionDateTime, "+03:00") {
				t.Errorf("date %q is not in the site's time zone", c.ConversionDateTime)
			}
		})
	}
}

// TestReplaysShufflesAndSecondSessionsOfAClickUploadOnce: the batches of
// two sessions of one click (a second tab), each replayed, shuffled and
// sent concurrently, make one row and one upload.
func TestReplaysShufflesAndSecondSessionsOfAClickUploadOnce(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{ga4: true})
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	a, b := newVisit("gclid", "Cj0KCQ-twotabs", start), newVisit("gclid", "Cj0KCQ-twotabs", start.Add(time.Minute))
	var all [][]byte
	for _, v := range []visit{a, b} {
		for _, batch := range v.batches() {
			all = append(all, batch, batch, batch)
		}
	}
	rng := rand.New(rand.NewPCG(7, 12))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(all); i += 4 {
				l.post(t, all[i])
			}
		}()
	}
	wg.Wait()
	l.settle(t)
	rows := l.rows(t)
	if len(rows) != 2 || rows[0].Destination != "ga4" || rows[1].Destination != "google_ads" {
		t.Fatalf("outbox %+v, want one row per destination", rows)
	}
	for _, r := range rows {
		if r.Status != "uploaded" || r.Attempts != 1 {
			t.Errorf("row %+v, want uploaded at the first attempt", r)
		}
	}
	if n := len(l.ads.Uploads()); n != 1 {
		t.Errorf("%d Google Ads uploads, want 1", n)
	}
	if ev := l.ga4.Events(); len(ev) != 1 || ev[0].Name != "qualify_lead" || ev[0].Params["gclid"] != "Cj0KCQ-twotabs" || ev[0].Params["currency"] != "TRY" {
		t.Errorf("GA4 events %+v, want one qualify_lead with the click id", ev)
	}
	if n := len(l.q.Publishes()); n != 2 {
		t.Errorf("%d publishes, want one per row", n)
	}
}

// TestConcurrentDuplicateDeliveriesUploadOnce: the same signed delivery
// sent eight times at once, while Google is slow to answer, uploads once;
// the others are told to come back (503, Retry-After) and later find it done.
func TestConcurrentDuplicateDeliveriesUploadOnce(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	l := newLoop(t, loopOptions{gate: gate})
	id := l.insertConversion(t, "google_ads", "gclid", "Cj0KCQ-dup", time.Now().Add(-time.Hour), true)
	d := l.signed(id)
	answers := make(chan answer, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- l.deliver(t, d)
		}()
	}
	// All but the one holding the claim answer while Google is held.
	var early []answer
	for range 7 {
		early = append(early, <-answers)
	}
	close(gate)
	wg.Wait()
	close(answers)
	winner := <-answers
	for _, a := range early {
		if a.status != 503 || a.body["error"] != "in_progress" || a.retryAfter == "" {
			t.Errorf("a concurrent duplicate answered %d %v (Retry-After %q), want 503 in_progress with Retry-After", a.status, a.body, a.retryAfter)
		}
	}
	if winner.status != 200 || winner.body["outcome"] != "uploaded" {
		t.Fatalf("the claiming delivery answered %d %v", winner.status, winner.body)
	}
	if n := len(l.ads.Uploads()); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
	// QStash's retry of a duplicate finds it done.
	if a := l.deliver(t, d); a.status != 200 || a.body["outcome"] != "already_uploaded" {
		t.Fatalf("a later duplicate answered %d %v", a.status, a.body)
	}
	if r := l.rows(t)[0]; r.Status != "uploaded" || r.Attempts != 1 || r.Claimed {
		t.Fatalf("row %+v", r)
	}
}

// TestQStashRetriesAfter5xxUploadOnce: Google fails twice (503, then a
// quota error with Retry-After); the worker answers 503 with Retry-After,
// QStash retries, and the third delivery uploads once.
func TestQStashRetriesAfter5xxUploadOnce(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	l.ads.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 503},
		googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 429, RetryAfter: "30"})
	v := newVisit("gclid", "Cj0KCQ-retry", time.Now().Add(-time.Minute).Truncate(time.Second))
	for _, b := range v.batches() {
		l.post(t, b)
	}
	l.settle(t)
	attempts := l.q.Attempts()
	if len(attempts) != 3 || attempts[0].Status != 503 || attempts[1].Status != 503 || attempts[2].Status != 200 {
		t.Fatalf("attempts %+v, want 503, 503, 200", attempts)
	}
	if attempts[0].ResponseHeader.Get("Retry-After") == "" || attempts[1].ResponseHeader.Get("Retry-After") != "30" || attempts[1].NextDelay != 30*time.Second {
		t.Errorf("Retry-After %q then %q (next delay %s), want Google's 30 s passed on", attempts[0].ResponseHeader.Get("Retry-After"),
			attempts[1].ResponseHeader.Get("Retry-After"), attempts[1].NextDelay)
	}
	if n := len(l.ads.Uploads()); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
	r := l.rows(t)[0]
	if r.Status != "uploaded" || r.Attempts != 3 || r.Code != "RESOURCE_EXHAUSTED" || r.Class != "retry_later" || r.RetryAfter != nil {
		t.Fatalf("row %+v, want uploaded after 3 attempts, the last error kept, no retry_after", r)
	}
}

// TestPublishFailureLeavesPendingAndTheSweepUploads: QStash refuses the
// publish (a wrong token): the batch is still answered 200 and the row
// stays pending; the sweep, once CONVERSION_REPUBLISH_AFTER has passed,
// republishes it and it is uploaded once.
func TestPublishFailureLeavesPendingAndTheSweepUploads(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	broken := l.publish
	broken.Token = "wrong-token"
	bad, err := conversions.NewPublisher(l.pool, broken, conversions.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := newIngest(t, l, bad)
	v := newVisit("gclid", "Cj0KCQ-swept", time.Now().Add(-time.Minute).Truncate(time.Second))
	for _, b := range v.batches() {
		postTo(t, srv, b)
	}
	rows := l.rows(t)
	if len(rows) != 1 || rows[0].Status != "pending" || rows[0].MessageID != "" {
		t.Fatalf("after a failed publish: %+v, want one pending row", rows)
	}
	if p := l.q.Publishes(); len(p) != 1 || p[0].Status != 401 {
		t.Fatalf("publishes %+v, want the one refused", p)
	}

	clock := time.Now()
	sweep := conversions.NewSweeper(l.pool, l.pub, conversions.SweepOptions{RepublishAfter: 5 * time.Minute, Now: func() time.Time { return clock }})
	if rep, err := sweep.Run(context.Background()); err != nil || rep.Republished != 0 {
		t.Fatalf("a sweep before 5 minutes: %+v %v, want nothing republished", rep, err)
	}
	clock = clock.Add(5*time.Minute + time.Second)
	rep, err := sweep.Run(context.Background())
	if err != nil || rep.Republished != 1 || rep.PublishFailed != 0 || rep.Created != 0 {
		t.Fatalf("sweep %+v %v, want one republished", rep, err)
	}
	l.settle(t)
	if r := l.rows(t)[0]; r.Status != "uploaded" || r.MessageID == "" {
		t.Fatalf("row %+v", r)
	}
	if n := len(l.ads.Uploads()); n != 1 {
		t.Fatalf("%d uploads", n)
	}
	// A second sweep has nothing to do.
	if rep, err := sweep.Run(context.Background()); err != nil || rep.Republished+rep.Created != 0 {
		t.Fatalf("second sweep %+v %v", rep, err)
	}
}

// TestTheLastFailedDeliveryHandsTheRowBackToTheSweep: when QStash's last
// retry fails transiently the row goes back to pending (not lost in the
// dead-letter queue); the sweep republishes it and it is uploaded.
func TestTheLastFailedDeliveryHandsTheRowBackToTheSweep(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{retries: 1})
	l.ads.FailNext(googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 500},
		googleadstest.Failure{Endpoint: googleadstest.EndpointUpload, Status: 500})
	v := newVisit("gbraid", "Cj0KCQ-last", time.Now().Add(-time.Minute).Truncate(time.Second))
	for _, b := range v.batches() {
		l.post(t, b)
	}
	l.settle(t)
	if dl := l.q.DeadLetters(); len(dl) != 1 {
		t.Fatalf("dead letters %+v, want the message after its one retry", dl)
	}
	r := l.rows(t)[0]
	if r.Status != "pending" || r.Attempts != 2 || r.Class != "retry_later" || r.RetryAfter == nil {
		t.Fatalf("row %+v, want pending again with its retry time", r)
	}
	sweep := conversions.NewSweeper(l.pool, l.pub, conversions.SweepOptions{RepublishAfter: 5 * time.Minute,
		Now: func() time.Time { return time.Now().Add(10 * time.Minute) }})
	if rep, err := sweep.Run(context.Background()); err != nil || rep.Republished != 1 {
		t.Fatalf("sweep %+v %v", rep, err)
	}
	l.settle(t)
	if r := l.rows(t)[0]; r.Status != "uploaded" || r.Attempts != 3 {
		t.Fatalf("row %+v", r)
	}
	if n := len(l.ads.Uploads()); n != 1 {
		t.Fatalf("%d uploads", n)
	}
}

// TestNothingGoesOutForSessionsThatDoNotQualify: at the threshold, without
// a click id, a bot, a site without settings: no row, no publish.
func TestNothingGoesOutForSessionsThatDoNotQualify(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	noClick := newVisit("gclid", "x", start)
	noClick.ctx["gclid"], noClick.ctx["url"] = nil, "https://shop.example/"
	for _, b := range noClick.batches() {
		l.post(t, b)
	}
	// 45 (phone) + 15 (5 minutes engaged) + 10 (scroll 95) + 10 (4 pageviews)
	// = 80: at the threshold, not above it.
	at := newVisit("gclid", "Cj0KCQ-at", start)
	l.post(t, at.batch(
		at.event("phone_click", 0, map[string]any{"target": "+905551112233"}),
		at.event("heartbeat", 30*time.Second, map[string]any{"active_ms": 300000, "scroll": 95, "state": "active"}),
		at.event("pageview", time.Second, nil), at.event("pageview", 2*time.Second, nil),
		at.event("pageview", 3*time.Second, nil), at.event("pageview", 4*time.Second, nil)))
	var score int
	if err := l.pool.QueryRow(context.Background(), `SELECT lead_score FROM sessions WHERE id = $1`, at.sid).Scan(&score); err != nil || score != 80 {
		t.Fatalf("score %d (%v), want exactly the threshold", score, err)
	}
	bot := newVisit("gclid", "Cj0KCQ-bot", start)
	for _, b := range bot.batches() {
		req := newRequest(t, l.ingestURL, b)
		req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
		doOK(t, req)
	}
	if _, err := l.pool.Exec(context.Background(), `UPDATE sites SET google_ads_customer_id = NULL, google_ads_conversion_action = NULL`); err != nil {
		t.Fatal(err)
	}
	unset := newVisit("gclid", "Cj0KCQ-unset", start)
	for _, b := range unset.batches() {
		l.post(t, b)
	}
	if rows := l.rows(t); len(rows) != 0 {
		t.Fatalf("outbox %+v, want empty", rows)
	}
	if p := l.q.Publishes(); len(p) != 0 {
		t.Fatalf("publishes %+v", p)
	}
}

// newIngest serves the ingest endpoint with another publisher.
func newIngest(t *testing.T, l *loop, pub *conversions.Publisher) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(ingest.New(l.pool, ingest.WithPublisher(pub), ingest.WithLogger(slog.New(slog.DiscardHandler))))
	t.Cleanup(srv.Close)
	return srv
}

func newRequest(t *testing.T, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", shopOrigin)
	req.Header.Set("User-Agent", browserUA)
	return req
}

func postTo(t *testing.T, srv *httptest.Server, body []byte) { doOK(t, newRequest(t, srv.URL, body)) }

func doOK(t *testing.T, req *http.Request) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest answered %d %s", resp.StatusCode, b)
	}
}

// TestTheSyncFunctionPublishesWhenQStashIsConfigured: ingest.FromConfig,
// what functions/sync runs, wires the publisher from QSTASH_* (and leaves it
// out without a token).
func TestTheSyncFunctionPublishesWhenQStashIsConfigured(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	for _, withToken := range []bool{false, true} {
		cfg := &config.Sync{Database: config.Database{URL: dbURL(t, l), MaxConns: 2}}
		if withToken {
			cfg.Publish = l.publish
		}
		h, err := ingest.FromConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		v := newVisit("gclid", fmt.Sprintf("Cj0KCQ-fromconfig-%v", withToken), time.Now().Add(-time.Minute).Truncate(time.Second))
		for _, b := range v.batches() {
			postTo(t, srv, b)
		}
		srv.Close()
	}
	l.settle(t)
	rows := l.rows(t)
	if len(rows) != 2 || rows[0].Status != "pending" || rows[1].Status != "uploaded" || len(l.q.Publishes()) != 1 {
		t.Fatalf("rows %+v, %d publishes; want the one without a token pending, the other uploaded", rows, len(l.q.Publishes()))
	}
}

// dbURL is the URL of the loop's database.
func dbURL(t *testing.T, l *loop) string {
	t.Helper()
	var name string
	if err := l.pool.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return dbtest.URL(name)
}
