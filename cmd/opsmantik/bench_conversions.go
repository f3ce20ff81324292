package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/googleads"
	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/qstashlocal"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

// Sizes of the conversion benchmark.
const (
	benchConversionsN     = 200  // conversions timed through the loop
	benchPlainBatches     = 2000 // non-qualifying batches per side
	benchQualifyingVisits = 400  // qualifying batches per side
)

// benchConversions prints the Google Ads loop's figures: the time from the
// qualifying batch's answer to Google's (fake's) upload through the local
// QStash and the worker, and ingest throughput on a site with Google Ads
// configured (the outbox statement writes rows and the handler publishes)
// beside the same site without: for batches that do not qualify, and for
// batches that do.
func benchConversions(ctx context.Context, serverURL string, concurrency int) error {
	fmt.Println("== conversions (Google Ads loop) ==")
	with, err := newBenchLoop(ctx, serverURL, "conv", concurrency, true)
	if err != nil {
		return err
	}
	defer with.close()

	fromAnswer, fromSend, early, err := with.latencies(ctx, benchConversionsN, 4)
	if err != nil {
		return err
	}
	fmt.Printf("qualifying batch answered → uploaded at Google's fake (local QStash, worker): %d conversions, %s (%d uploaded before the answer was read, counted as 0: the publish precedes the answer)\n",
		len(fromAnswer), percentiles(fromAnswer), early)
	fmt.Printf("qualifying batch sent → uploaded:  %s\n", percentiles(fromSend))

	without, err := newBenchLoop(ctx, serverURL, "noconv", concurrency, false)
	if err != nil {
		return err
	}
	defer without.close()

	plainA, plainB := benchBodies(benchPlainBatches), benchBodies(benchPlainBatches)
	qualA, qualB := qualifyingBodies(benchQualifyingVisits), qualifyingBodies(benchQualifyingVisits)
	// Warm both, then alternate halves so that neither side gains from going second.
	for _, l := range []*benchLoop{with, without} {
		if _, err := drive(0, 50, concurrency, 10*time.Second, l.poster(benchBodies(50))); err != nil {
			return err
		}
	}
	var pa, pb, qa, qb benchResult
	for half := range 2 {
		from, to := half*benchPlainBatches/2, (half+1)*benchPlainBatches/2
		ra, err := drive(from, to, concurrency, time.Minute, with.poster(plainA))
		if err != nil {
			return err
		}
		rb, err := drive(from, to, concurrency, time.Minute, without.poster(plainB))
		if err != nil {
			return err
		}
		pa, pb = pa.add(ra), pb.add(rb)
		from, to = half*benchQualifyingVisits/2, (half+1)*benchQualifyingVisits/2
		ra, err = drive(from, to, concurrency, time.Minute, with.poster(qualA))
		if err != nil {
			return err
		}
		rb, err = drive(from, to, concurrency, time.Minute, without.poster(qualB))
		if err != nil {
			return err
		}
		qa, qb = qa.add(ra), qb.add(rb)
	}
	fmt.Printf("batches that do not qualify, site with Google Ads: %s\n", pa)
	fmt.Printf("batches that do not qualify, site without:         %s\n", pb)
	fmt.Printf("  ratio with/without: %.2f (target ≈ 1: the outbox costs them nothing)\n", pa.perSecond()/pb.perSecond())
	fmt.Printf("qualifying batches (outbox row + publish), with:   %s\n", throughput(qa))
	fmt.Printf("qualifying batches, site without Google Ads:       %s\n", throughput(qb))
	fmt.Printf("  ratio with/without: %.2f (the publish is in the answer's path)\n", qa.perSecond()/qb.perSecond())
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := with.q.WaitIdle(wctx); err != nil {
		return fmt.Errorf("conversions bench: QStash did not settle: %w", err)
	}
	var uploaded, all int
	if err := with.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'uploaded'), count(*) FROM conversions`).Scan(&uploaded, &all); err != nil {
		return err
	}
	fmt.Printf("outbox after the run: %d of %d conversions uploaded, %d uploads at the fake\n", uploaded, all, len(with.ads.Uploads()))
	return nil
}

// benchLoop is the ingest endpoint on loopback with, when configured, the
// whole loop behind it: a local QStash, the worker and Google Ads' fake.
type benchLoop struct {
	pool    *pgxpool.Pool
	drop    func()
	q       *qstashlocal.Server
	ads     *googleadstest.Server
	ingest  string
	servers []*http.Server
	client  *http.Client

	mu      sync.Mutex
	arrived map[string]time.Time // gclid → when the fake answered its upload
}

func newBenchLoop(ctx context.Context, serverURL, suffix string, concurrency int, configured bool) (*benchLoop, error) {
	pool, drop, err := benchDatabase(ctx, serverURL, suffix, concurrency+4)
	if err != nil {
		return nil, err
	}
	l := &benchLoop{pool: pool, drop: drop, arrived: map[string]time.Time{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}, Timeout: 10 * time.Second}}
	fail := func(err error) (*benchLoop, error) { l.close(); return nil, err }
	var opts []ingest.Option
	opts = append(opts, ingest.WithLogger(discardLogger()))
	if configured {
		customer, action := "1234567890", "Qualified lead"
		if _, err := sites.SetAds(ctx, pool, "bench", sites.AdsSettings{GoogleAdsCustomerID: &customer, GoogleAdsConversionAction: &action}); err != nil {
			return fail(err)
		}
		l.ads = googleadstest.New(googleadstest.Options{})
		l.ads.AddConversionAction(googleadstest.ConversionAction{CustomerID: customer, ID: 987, Name: action})
		adsURL, err := l.serve(http.HandlerFunc(l.recordUploads))
		if err != nil {
			return fail(err)
		}
		l.ads.URL = adsURL
		if l.q, err = qstashlocal.New(qstashlocal.Options{}); err != nil {
			return fail(err)
		}
		mux := http.NewServeMux()
		workerBase, err := l.serve(mux)
		if err != nil {
			return fail(err)
		}
		workerURL := workerBase + syncGoogleAdsPath
		cfg := l.ads.ClientConfig()
		cfg.TokenURL = adsURL + "/token"
		ads, err := googleads.New(cfg)
		if err != nil {
			return fail(err)
		}
		worker, err := conversions.NewWorker(pool, config.Secret(l.q.CurrentSigningKey()), config.Secret(l.q.NextSigningKey()), workerURL,
			conversions.WorkerOptions{Ads: ads, Retries: 5, Logger: discardLogger()})
		if err != nil {
			return fail(err)
		}
		mux.Handle(syncGoogleAdsPath, worker)
		pub, err := conversions.NewPublisher(pool, config.QStashPublish{URL: l.q.URL(), Token: config.Secret(l.q.Token()), Retries: 5, WorkerURL: workerURL},
			conversions.PublisherOptions{Logger: discardLogger()})
		if err != nil {
			return fail(err)
		}
		opts = append(opts, ingest.WithPublisher(pub))
	}
	base, err := l.serve(ingest.New(pool, opts...))
	if err != nil {
		return fail(err)
	}
	l.ingest = base + "/api/sync"
	return l, nil
}

// serve starts h on a loopback port and returns its base URL.
func (l *benchLoop) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.Serve(ln)
	l.servers = append(l.servers, srv)
	return "http://" + ln.Addr().String(), nil
}

// recordUploads is the fake Google Ads, noting when it answered each click's upload.
func (l *benchLoop) recordUploads(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	l.ads.ServeHTTP(w, r)
	if up, err := googleadstest.ParseUpload(body); err == nil {
		now := time.Now()
		l.mu.Lock()
		for _, c := range up.Conversions {
			l.arrived[c.Gclid] = now
		}
		l.mu.Unlock()
	}
}

func (l *benchLoop) close() {
	for _, s := range l.servers {
		_ = s.Close()
	}
	if l.q != nil {
		_ = l.q.Close()
	}
	l.pool.Close()
	l.drop()
}

// post sends one batch and requires a 200.
func (l *benchLoop) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.ingest, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	req.Header.Set("Origin", "https://shop.example")
	req.Header.Set("User-Agent", benchUA)
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("batch: %d %s", resp.StatusCode, b)
	}
	return nil
}

func (l *benchLoop) poster(bodies [][]byte) func(int) error {
	return func(i int) error { return l.post(context.Background(), bodies[i]) }
}

// percentiles is "p50 x ms, p99 y ms, max z ms".
func percentiles(d []time.Duration) string {
	d = slices.Clone(d)
	slices.Sort(d)
	pct := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000 }
	return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms", pct(0.50), pct(0.99), pct(1))
}

// throughput is a benchResult of batches of any size.
func throughput(r benchResult) string {
	return fmt.Sprintf("%d batches in %.2fs: %.0f batches/s, %s", r.batches, r.elapsed.Seconds(), r.perSecond(), percentiles(r.latencies))
}

// latencies plays n qualifying visits with c at a time and returns, for
// each, the time from the qualifying batch's answer and from its sending to
// the fake's upload, and how many uploads came before the answer was read
// (counted as 0).
func (l *benchLoop) latencies(ctx context.Context, n, c int) (fromAnswer, fromSend []time.Duration, early int, err error) {
	now := time.Now()
	sent, answered := make([]time.Time, n), make([]time.Time, n)
	clicks := make([]string, n)
	_, err = drive(0, n, c, 2*time.Minute, func(i int) error {
		sid := uuid.New()
		clicks[i] = "Cj0KCQ-bench-" + sid.String()
		if err := l.post(ctx, visitBody(sid, clicks[i], now, false)); err != nil {
			return err
		}
		sent[i] = time.Now()
		if err := l.post(ctx, visitBody(sid, clicks[i], now, true)); err != nil {
			return err
		}
		answered[i] = time.Now()
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := l.q.WaitUntil(wctx, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.arrived) >= n
	}); err != nil {
		return nil, nil, 0, fmt.Errorf("conversions bench: %d of %d uploads arrived: %w", len(l.arrived), n, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fromAnswer, fromSend = make([]time.Duration, n), make([]time.Duration, n)
	for i, click := range clicks {
		d := l.arrived[click].Sub(answered[i])
		if d < 0 {
			d, early = 0, early+1
		}
		fromAnswer[i], fromSend[i] = d, l.arrived[click].Sub(sent[i])
	}
	return fromAnswer, fromSend, early, nil
}

// visitBody is a tracker batch of an ad visit: the landing (qualify false,
// score 0) or the phone click and form that qualify it (score 95).
func visitBody(sid uuid.UUID, gclid string, now time.Time, qualify bool) []byte {
	ts := now.UnixMilli()
	events := fmt.Sprintf(`{"id":"%s","type":"pageview","ts":%d,"url":"https://shop.example/","title":"Home"}`, uuid.New(), ts-2000)
	if qualify {
		events = fmt.Sprintf(`{"id":"%s","type":"phone_click","ts":%d,"url":"https://shop.example/","target":"+905551112233"},`+
			`{"id":"%s","type":"form_submit","ts":%d,"url":"https://shop.example/","form":"contact"}`, uuid.New(), ts-1000, uuid.New(), ts)
	}
	return fmt.Appendf(nil, `{"v":1,"site":"bench","sid":"%s","vid":"%s","sent_at":%d,"failures":0,"channel":"primary",`+
		`"ctx":{"url":"https://shop.example/?gclid=%s","referrer":"https://www.google.com/","gclid":"%s","lang":"tr-TR","tz":"Europe/Istanbul"},`+
		`"events":[%s]}`, sid, sid, ts, gclid, gclid, events)
}

// qualifyingBodies are n visits' qualifying batches, each its own session and click.
func qualifyingBodies(n int) [][]byte {
	now := time.Now()
	out := make([][]byte, n)
	for i := range out {
		sid := uuid.New()
		out[i] = visitBody(sid, "Cj0KCQ-q-"+sid.String(), now, true)
	}
	return out
}
