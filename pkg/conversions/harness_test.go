package conversions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/ga4/ga4test"
	"github.com/opsmantik/opsmantik/pkg/googleads"
	"github.com/opsmantik/opsmantik/pkg/googleads/googleadstest"
	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/qstashlocal"
	"github.com/opsmantik/opsmantik/pkg/sites"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	customerID = "1234567890"
	actionName = "Qualified lead"
	actionRes  = "customers/1234567890/conversionActions/987"
	browserUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	shopOrigin = "https://shop.example"
	workerPath = "/api/sync-google-ads"
)

// logBuffer collects JSON log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines whose msg is msg, decoded.
func (l *logBuffer) lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

type loopOptions struct {
	dry     bool // no Google Ads credentials
	ga4     bool // the site sends to GA4 too
	retries int  // QSTASH_RETRIES; 0 means 5
	// gate, when set, holds every Google Ads API call until it is closed.
	gate chan struct{}
}

// loop is the whole Google Ads loop on one machine: the ingest endpoint with
// the publisher, a local QStash, the worker, and Google's fakes.
type loop struct {
	t         testing.TB
	pool      *pgxpool.Pool
	site      sites.Site
	ads       *googleadstest.Server
	ga4       *ga4test.Server
	q         *qstashlocal.Server
	worker    *conversions.Worker
	workerURL string
	ingestURL string
	pub       *conversions.Publisher
	publish   config.QStashPublish
	logs      *logBuffer
	retries   int
}

func newLoop(t testing.TB, o loopOptions) *loop {
	t.Helper()
	l := &loop{t: t, pool: dbtest.New(t), logs: &logBuffer{}, retries: o.retries}
	if l.retries == 0 {
		l.retries = 5
	}
	ctx := context.Background()
	var err error
	l.site, err = sites.Add(ctx, l.pool, sites.NewSite{PublicID: "shop1", Domains: []string{"shop.example"}, Timezone: "Europe/Istanbul", Currency: "TRY"})
	if err != nil {
		t.Fatal(err)
	}
	ads := sites.AdsSettings{GoogleAdsCustomerID: ptr("123-456-7890"), GoogleAdsConversionAction: ptr(actionName)}
	if o.ga4 {
		ads.GA4MeasurementID, ads.GA4APISecret = ptr(ga4test.MeasurementID), ptr(ga4test.APISecret)
	}
	if _, err := sites.SetAds(ctx, l.pool, "shop1", ads); err != nil {
		t.Fatal(err)
	}

	l.ads = googleadstest.New(googleadstest.Options{})
	l.ads.AddConversionAction(googleadstest.ConversionAction{CustomerID: customerID, ID: 987, Name: actionName})
	var adsHandler http.Handler = l.ads
	if o.gate != nil {
		gate := o.gate
		adsHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/token" {
				<-gate
			}
			l.ads.ServeHTTP(w, r)
		})
	}
	adsSrv := httptest.NewServer(adsHandler)
	t.Cleanup(adsSrv.Close)
	l.ads.URL = adsSrv.URL
	l.ga4 = ga4test.NewServer(ga4test.Options{})
	t.Cleanup(l.ga4.Close)

	// Scale 1000: QStash's 12 s first back-off takes 12 ms, a 60 s
	// Retry-After 60 ms.
	l.q, err = qstashlocal.New(qstashlocal.Options{Scale: 1000, MaxRetries: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.q.Close() })

	logger := slog.New(slog.NewJSONHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	workerSrv := httptest.NewServer(mux)
	t.Cleanup(workerSrv.Close)
	l.workerURL = workerSrv.URL + workerPath
	wopts := conversions.WorkerOptions{GA4BaseURL: l.ga4.URL, Retries: l.retries, Logger: logger, AdsBaseURL: adsSrv.URL}
	if !o.dry {
		cfg := l.ads.ClientConfig()
		cfg.BaseURL, cfg.TokenURL = adsSrv.URL, adsSrv.URL+"/token"
		client, err := googleads.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		wopts.Ads = client
	}
	l.worker, err = conversions.NewWorker(l.pool, config.Secret(l.q.CurrentSigningKey()), config.Secret(l.q.NextSigningKey()), l.workerURL, wopts)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(workerPath, l.worker)

	l.publish = config.QStashPublish{URL: l.q.URL(), Token: config.Secret(l.q.Token()), Retries: l.retries, WorkerURL: l.workerURL}
	l.pub, err = conversions.NewPublisher(l.pool, l.publish, conversions.PublisherOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ingestSrv := httptest.NewServer(ingest.New(l.pool, ingest.WithPublisher(l.pub), ingest.WithLogger(logger)))
	t.Cleanup(ingestSrv.Close)
	l.ingestURL = ingestSrv.URL
	return l
}

func ptr(s string) *string { return &s }

// visit is one tracker session: its ids and landing context.
type visit struct {
	sid, vid string
	ctx      map[string]any
	start    time.Time
}

// newVisit is a visit from a Google ad: kind is gclid, wbraid or gbraid.
func newVisit(kind, clickID string, start time.Time) visit {
	url := "https://shop.example/landing?" + kind + "=" + clickID + "&utm_source=google&utm_medium=cpc"
	ctx := map[string]any{"url": url, "referrer": "https://www.google.com/", "gclid": nil, "wbraid": nil, "gbraid": nil,
		"utm_source": "google", "utm_medium": "cpc", "lang": "tr-TR", "tz": "Europe/Istanbul", "sw": 390, "sh": 844}
	ctx[kind] = clickID
	return visit{sid: uuid.NewString(), vid: uuid.NewString(), ctx: ctx, start: start}
}

// batches are the visit's tracker batches: a landing pageview with a
// heartbeat (score 5), then a phone click (50), then a form (100: qualified).
// The form at start+40s is the latest interaction: the conversion's time.
func (v visit) batches() [][]byte {
	return [][]byte{
		v.batch(v.event("pageview", 0, map[string]any{"title": "Home"}),
			v.event("heartbeat", 10*time.Second, map[string]any{"active_ms": 9000, "scroll": 60, "state": "active"})),
		v.batch(v.event("phone_click", 20*time.Second, map[string]any{"target": "+905551112233"})),
		v.batch(v.event("form_submit", 40*time.Second, map[string]any{"form": "contact"})),
	}
}

// event is a tracker event at start+at.
func (v visit) event(typ string, at time.Duration, extra map[string]any) map[string]any {
	e := map[string]any{"id": uuid.NewString(), "type": typ, "ts": v.start.Add(at).UnixMilli(), "url": v.ctx["url"]}
	for k, x := range extra {
		e[k] = x
	}
	return e
}

// batch is one tracker request carrying events.
func (v visit) batch(events ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"v": 1, "site": "shop1", "sid": v.sid, "vid": v.vid, "sent_at": time.Now().UnixMilli(),
		"failures": 0, "channel": "primary", "ctx": v.ctx, "events": events})
	return b
}

// convertedAt is when the visit's score crossed: its form submission.
func (v visit) convertedAt() time.Time {
	return v.start.Add(40 * time.Second).Truncate(time.Millisecond)
}

// post sends one batch as the tracker does; it must be answered 200.
func (l *loop) post(t *testing.T, body []byte) { t.Helper(); doOK(t, newRequest(t, l.ingestURL, body)) }

// settle waits until QStash has nothing left to deliver.
func (l *loop) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.q.WaitIdle(ctx); err != nil {
		t.Fatalf("QStash did not settle: %v\nattempts: %+v", err, l.q.Attempts())
	}
}

// outboxRow is a conversion as stored.
type outboxRow struct {
	ID, Destination, ClickType, ClickID, Status, Code, Class, MessageID string
	Attempts                                                            int
	DryRun, Claimed                                                     bool
	RetryAfter, UploadedAt                                              *time.Time
	Value                                                               float64
}

func (l *loop) rows(t *testing.T) []outboxRow {
	t.Helper()
	rows, err := l.pool.Query(context.Background(), `
		SELECT id::text, destination, click_id_type, click_id, status, coalesce(last_error_code, ''), coalesce(last_error_class, ''),
		       coalesce(qstash_message_id, ''), attempts, dry_run, claim_id IS NOT NULL, retry_after, uploaded_at, value::float8
		FROM conversions ORDER BY created_at, destination`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.Destination, &r.ClickType, &r.ClickID, &r.Status, &r.Code, &r.Class, &r.MessageID,
			&r.Attempts, &r.DryRun, &r.Claimed, &r.RetryAfter, &r.UploadedAt, &r.Value); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// insertConversion writes an outbox row as ingest would, for tests that
// deliver by hand, and returns its id.
func (l *loop) insertConversion(t testing.TB, destination, kind, clickID string, convertedAt time.Time, visitor bool) string {
	t.Helper()
	var vid *string
	if visitor {
		v := uuid.NewString()
		vid = &v
	}
	var id string
	err := l.pool.QueryRow(context.Background(), `
		INSERT INTO conversions (site_id, session_id, destination, click_id_type, click_id, visitor_id, value, currency, converted_at)
		VALUES ($1, $2, $3, $4, $5, $6, 95, 'TRY', $7) RETURNING id::text`,
		l.site.ID, uuid.NewString(), destination, kind, clickID, vid, convertedAt).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// delivery is a worker request as QStash sends it, signed with key for url.
type delivery struct {
	body, key, url string
	at             time.Time
	retried        int
	sign           bool
}

func (l *loop) signed(id string) delivery {
	return delivery{body: fmt.Sprintf(`{"conversion_id":%q}`, id), key: l.q.CurrentSigningKey(), url: l.workerURL, at: time.Now(), sign: true}
}

type answer struct {
	status     int
	retryAfter string
	body       map[string]any
}

// deliver sends d to the worker directly, as QStash would.
func (l *loop) deliver(t *testing.T, d delivery) answer { t.Helper(); return l.send(t, d, d.body, nil) }

// deliverTampered signs d's body and sends body instead.
func (l *loop) deliverTampered(t *testing.T, d delivery, body string) answer {
	t.Helper()
	return l.send(t, d, body, nil)
}

// deliverWith sends d with its headers changed by edit.
func (l *loop) deliverWith(t *testing.T, d delivery, edit func(*http.Request)) answer {
	t.Helper()
	return l.send(t, d, d.body, edit)
}

func (l *loop) send(t testing.TB, d delivery, body string, edit func(*http.Request)) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, l.workerURL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Upstash-QStash")
	req.Header.Set("Upstash-Retried", fmt.Sprint(d.retried))
	if d.sign {
		sig, err := qstashlocal.Sign(d.key, d.url, []byte(d.body), d.at)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Upstash-Signature", sig)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

// wire is what the fake received for one upload.
func wireTime(t time.Time) string {
	ist, _ := time.LoadLocation("Europe/Istanbul")
	return t.In(ist).Format("2006-01-02 15:04:05-07:00")
}
