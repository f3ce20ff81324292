package conversions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
	_ "time/tzdata" // site time zones on a Lambda image without zoneinfo

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/upstash/qstash-go"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/ga4"
	"github.com/opsmantik/opsmantik/pkg/googleads"
)

// Worker limits.
const (
	// MaxDeliveryBytes bounds a delivery's body; ours is about 60 bytes.
	MaxDeliveryBytes = 4 << 10
	// UploadDeadline bounds the work of one delivery (database and Google),
	// under the function's 30-second timeout.
	UploadDeadline = 25 * time.Second
	// ClaimLease is how long a delivery holds its row. Longer than any
	// delivery can take, so that a live holder never loses it; a dead
	// holder's claim ends with it.
	ClaimLease = 60 * time.Second
	// SignatureTolerance is the clock difference allowed on the signature's
	// nbf and exp.
	SignatureTolerance = 30 * time.Second
)

// AdsUploader uploads click conversions (a *googleads.Client).
type AdsUploader interface {
	UploadClickConversions(ctx context.Context, customerID string, conversions []googleads.Conversion) ([]googleads.Outcome, error)
}

// WorkerOptions are the worker's collaborators; zero values are the defaults.
type WorkerOptions struct {
	// Ads uploads to Google Ads; nil runs dry (logs the request, marks the row
	// uploaded with dry_run).
	Ads AdsUploader
	// AdsBaseURL, AdsVersion and AdsLoginCustomerID make the dry run's
	// request the one the client would send.
	AdsBaseURL, AdsVersion, AdsLoginCustomerID string
	// GA4BaseURL is the Measurement Protocol's; HTTPClient reaches it.
	GA4BaseURL string
	HTTPClient *http.Client
	// Retries is what the publisher sets as Upstash-Retries: a transient
	// failure of the delivery with Upstash-Retried = Retries is QStash's last,
	// so the row goes back to pending for the sweep. Negative: never.
	Retries int
	Now     func() time.Time
	Logger  *slog.Logger
}

// Worker is the sync-google-ads handler: QStash delivers
// {"conversion_id": "…"} and it uploads that conversion.
type Worker struct {
	db       *pgxpool.Pool
	receiver *qstash.Receiver
	url      string
	opts     WorkerOptions
}

// NewWorker makes the handler. Deliveries must be signed with currentKey or
// nextKey for url, the worker's own public URL.
func NewWorker(db *pgxpool.Pool, currentKey, nextKey config.Secret, url string, opts WorkerOptions) (*Worker, error) {
	if currentKey == "" || nextKey == "" || url == "" {
		return nil, errors.New("conversions: the worker needs both signing keys and its URL")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 20 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.GA4BaseURL == "" {
		opts.GA4BaseURL = ga4.DefaultBaseURL
	}
	return &Worker{db: db, receiver: qstash.NewReceiver(string(currentKey), string(nextKey)), url: url, opts: opts}, nil
}

// WorkerFromConfig opens the database and builds the handler
// (functions/sync-google-ads).
func WorkerFromConfig(ctx context.Context, cfg *config.SyncGoogleAds) (http.Handler, error) {
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, err
	}
	logger := cfg.Log.Logger()
	return NewWorkerWith(pool, cfg.Delivery, cfg.GoogleAds, cfg.GA4, logger)
}

// NewWorkerWith builds the worker from configuration over an open pool.
func NewWorkerWith(pool *pgxpool.Pool, d config.QStashDelivery, g config.GoogleAds, g4 config.GA4, logger *slog.Logger) (*Worker, error) {
	opts := WorkerOptions{AdsBaseURL: g.APIURL, AdsVersion: g.APIVersion, AdsLoginCustomerID: g.LoginCustomerID, GA4BaseURL: g4.APIURL, Retries: d.Retries, Logger: logger}
	if g.Configured() {
		client, err := googleads.New(googleads.Config{
			BaseURL: g.APIURL, Version: g.APIVersion, TokenURL: g.OAuthTokenURL,
			ClientID: g.ClientID, ClientSecret: g.ClientSecret, RefreshToken: g.RefreshToken,
			LoginCustomerID: g.LoginCustomerID, DeveloperToken: g.DeveloperToken,
		})
		if err != nil {
			return nil, err
		}
		opts.Ads = client
	} else {
		logger.Warn("GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET and GOOGLE_ADS_REFRESH_TOKEN are not set: sync-google-ads runs dry (logs each upload, marks it uploaded with dry_run)")
	}
	return NewWorker(pool, d.CurrentSigningKey, d.NextSigningKey, d.WorkerURL, opts)
}

// delivery is what one request did, for its answer and its log line.
type delivery struct {
	status       int
	err          string // error code of the answer
	retryAfter   time.Duration
	conversionID string
	destination  string
	outcome      string // uploaded | failed | retry_later | already_uploaded | already_failed | busy
	code         string
	attempts     int
	dryRun       bool
}

func (w *Worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	d := w.deliver(r)
	w.answer(rw, d)
	level := slog.LevelInfo
	if d.status >= 500 || d.outcome == string(Failed) {
		level = slog.LevelWarn
	}
	w.opts.Logger.LogAttrs(r.Context(), level, "sync-google-ads",
		slog.Int("status", d.status), slog.String("error", d.err), slog.String("conversion_id", d.conversionID),
		slog.String("destination", d.destination), slog.String("outcome", d.outcome), slog.String("code", d.code),
		slog.Int("attempts", d.attempts), slog.String("retried", r.Header.Get("Upstash-Retried")),
		slog.String("message_id", r.Header.Get("Upstash-Message-Id")), slog.Bool("dry_run", d.dryRun),
		slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
}

func (w *Worker) answer(rw http.ResponseWriter, d delivery) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	if d.status == http.StatusMethodNotAllowed {
		rw.Header().Set("Allow", http.MethodPost)
	}
	if d.retryAfter > 0 {
		rw.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Round(d.retryAfter.Seconds())))))
	}
	rw.WriteHeader(d.status)
	body := map[string]any{"ok": d.status < 300}
	if d.err != "" {
		body["error"] = d.err
	}
	if d.conversionID != "" {
		body["conversion_id"] = d.conversionID
	}
	if d.outcome != "" {
		body["outcome"] = d.outcome
	}
	if d.code != "" {
		body["code"] = d.code
	}
	if d.dryRun {
		body["dry_run"] = true
	}
	_ = json.NewEncoder(rw).Encode(body)
}

func (w *Worker) deliver(r *http.Request) delivery {
	if r.Method != http.MethodPost {
		return delivery{status: http.StatusMethodNotAllowed, err: "method_not_allowed"}
	}
	sig := r.Header.Get("Upstash-Signature")
	if sig == "" {
		return delivery{status: http.StatusUnauthorized, err: "missing_signature"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxDeliveryBytes+1))
	if err != nil {
		return delivery{status: http.StatusBadRequest, err: "unreadable_body"}
	}
	if len(body) > MaxDeliveryBytes {
		return delivery{status: http.StatusRequestEntityTooLarge, err: "body_too_large"}
	}
	// Nothing is read from the database or sent anywhere before this.
	if err := w.receiver.Verify(qstash.VerifyOptions{Signature: sig, Body: string(body), Url: w.url, Tolerance: SignatureTolerance}); err != nil {
		return delivery{status: http.StatusUnauthorized, err: "invalid_signature"}
	}
	var msg struct {
		ConversionID string `json:"conversion_id"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return delivery{status: http.StatusBadRequest, err: "invalid_body"}
	}
	if _, err := uuid.Parse(msg.ConversionID); err != nil {
		return delivery{status: http.StatusBadRequest, err: "invalid_conversion_id"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), UploadDeadline)
	defer cancel()
	retried, _ := strconv.Atoi(r.Header.Get("Upstash-Retried"))
	d := w.process(ctx, msg.ConversionID, retried, r.Header.Get("Upstash-Message-Id"))
	d.conversionID = msg.ConversionID
	return d
}

// row is a claimed conversion with its site's current settings.
type row struct {
	id, destination, clickType, clickID, visitorID, currency string
	value                                                    float64
	convertedAt                                              time.Time
	attempts                                                 int
	timezone, customerID, action, ga4ID, ga4Secret, consent  string
}

// claimSQL takes the row for this delivery: only an unfinished row that no
// live delivery holds. A concurrent claim waits for the row lock and then
// finds it held. (retry_after is not checked here: QStash waits for the
// Retry-After it was given, and a rare early duplicate only hears
// Google's TOO_RECENT_* again; the sweep honours it.) The delivery's message
// id is recorded, whichever of the publisher and the delivery comes first.
const claimSQL = `
UPDATE conversions c SET claim_id = @claim::uuid, claimed_until = @until::timestamptz,
       attempts = c.attempts + 1, updated_at = @now::timestamptz,
       qstash_message_id = coalesce(@message_id::text, c.qstash_message_id)
FROM sites s
WHERE c.id = @id::uuid AND s.id = c.site_id AND c.status IN ('pending', 'published')
  AND (c.claimed_until IS NULL OR c.claimed_until <= @now::timestamptz)
RETURNING c.destination, c.click_id_type, c.click_id, coalesce(c.visitor_id::text, ''), c.currency, c.value::float8,
          c.converted_at, c.attempts, s.timezone, coalesce(s.google_ads_customer_id, ''),
          coalesce(s.google_ads_conversion_action, ''), coalesce(s.ga4_measurement_id, ''), coalesce(s.ga4_api_secret, ''), s.ads_consent`

const rowStateSQL = `SELECT status, attempts, claimed_until FROM conversions WHERE id = @id::uuid`

// finishSQL records the outcome, if this delivery still holds the claim, and
// releases it.
const finishSQL = `
UPDATE conversions SET status = @status::text, last_error_code = coalesce(@code::text, last_error_code),
       last_error_message = coalesce(@message::text, last_error_message), last_error_class = coalesce(@class::text, last_error_class),
       retry_after = @retry_after::timestamptz, dry_run = @dry_run::boolean,
       uploaded_at = CASE WHEN @status::text = 'uploaded' THEN @now::timestamptz ELSE uploaded_at END,
       claim_id = NULL, claimed_until = NULL, updated_at = @now::timestamptz
WHERE id = @id::uuid AND claim_id = @claim::uuid`

// result is what an upload became, in the outbox's terms.
type result struct {
	status  Status
	class   string // ClassRetryLater, … ("" on success)
	code    string
	message string
	retryAt time.Time // transient only
	dryRun  bool
}

func (w *Worker) process(ctx context.Context, id string, retried int, messageID string) delivery {
	now := w.opts.Now()
	claim := uuid.NewString()
	var rw row
	rw.id = id
	err := w.db.QueryRow(ctx, claimSQL, pgx.NamedArgs{"id": id, "claim": claim, "until": now.Add(ClaimLease), "now": now, "message_id": nullable(messageID)}).Scan(
		&rw.destination, &rw.clickType, &rw.clickID, &rw.visitorID, &rw.currency, &rw.value, &rw.convertedAt, &rw.attempts,
		&rw.timezone, &rw.customerID, &rw.action, &rw.ga4ID, &rw.ga4Secret, &rw.consent)
	if errors.Is(err, pgx.ErrNoRows) {
		return w.unclaimed(ctx, id, now)
	}
	if err != nil {
		w.opts.Logger.ErrorContext(ctx, "sync-google-ads: claim failed", "conversion_id", id, "err", err.Error())
		return delivery{status: http.StatusServiceUnavailable, err: "storage_unavailable"}
	}
	d := delivery{destination: rw.destination, attempts: rw.attempts}
	var res result
	switch rw.destination {
	case DestinationGoogleAds:
		res = w.uploadAds(ctx, rw, now)
	case DestinationGA4:
		res = w.sendGA4(ctx, rw)
	default:
		res = result{status: Failed, class: ClassConfigError, code: CodeNotConfigured, message: "unknown destination " + rw.destination}
	}
	status := res.status
	if res.class == ClassRetryLater {
		// Still published: QStash retries it. After its last retry the sweep
		// republishes it, once retry_after has passed.
		status = Published
		if w.opts.Retries >= 0 && retried >= w.opts.Retries {
			status = Pending
		}
	}
	args := pgx.NamedArgs{"id": id, "claim": claim, "status": string(status), "code": nullable(res.code), "message": nullable(res.message),
		"class": nullable(res.class), "retry_after": nullableTime(res.retryAt), "dry_run": res.dryRun, "now": w.opts.Now()}
	// The outcome is recorded even when the request ended meanwhile: Google
	// has been told, and the row must say so.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	tag, err := w.db.Exec(fctx, finishSQL, args)
	if err != nil {
		w.opts.Logger.ErrorContext(ctx, "sync-google-ads: recording the outcome failed", "conversion_id", id, "outcome", string(res.status), "err", err.Error())
		return delivery{status: http.StatusServiceUnavailable, err: "storage_unavailable", destination: rw.destination, attempts: rw.attempts}
	}
	if tag.RowsAffected() == 0 {
		w.opts.Logger.WarnContext(ctx, "sync-google-ads: the claim ended before the outcome was recorded", "conversion_id", id, "outcome", string(res.status))
	}
	d.code, d.dryRun = res.code, res.dryRun
	if res.class == ClassRetryLater {
		d.status, d.err, d.outcome = http.StatusServiceUnavailable, "retry_later", ClassRetryLater
		d.retryAfter = max(res.retryAt.Sub(w.opts.Now()), time.Second)
		return d
	}
	d.status, d.outcome = http.StatusOK, string(res.status)
	return d
}

// unclaimed explains why a delivery could not claim its row.
func (w *Worker) unclaimed(ctx context.Context, id string, now time.Time) delivery {
	var status string
	var attempts int
	var claimedUntil *time.Time
	err := w.db.QueryRow(ctx, rowStateSQL, pgx.NamedArgs{"id": id}).Scan(&status, &attempts, &claimedUntil)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return delivery{status: http.StatusNotFound, err: "unknown_conversion"}
	case err != nil:
		return delivery{status: http.StatusServiceUnavailable, err: "storage_unavailable"}
	case !Status(status).Unfinished():
		// QStash delivers at least once: a repeat of a finished one is done.
		return delivery{status: http.StatusOK, outcome: "already_" + status, attempts: attempts}
	}
	// Another delivery holds it: come back when its claim has ended, by
	// when the row is finished or free.
	wait := 5 * time.Second
	if claimedUntil != nil && claimedUntil.After(now) {
		wait = claimedUntil.Sub(now)
	}
	return delivery{status: http.StatusServiceUnavailable, err: "in_progress", outcome: "busy", attempts: attempts, retryAfter: wait}
}

func (w *Worker) uploadAds(ctx context.Context, rw row, now time.Time) result {
	if rw.customerID == "" || rw.action == "" {
		return result{status: Failed, class: ClassConfigError, code: CodeNotConfigured,
			message: "the site has no Google Ads customer id and conversion action (opsmantik site set)"}
	}
	loc, err := time.LoadLocation(rw.timezone)
	if err != nil {
		loc = time.UTC // the instant is right either way; Google takes any offset
	}
	c := googleads.Conversion{Action: rw.action, Time: rw.convertedAt, TimeZone: loc, Value: rw.value, Currency: rw.currency, OrderID: rw.id}
	switch rw.clickType {
	case "gclid":
		c.GCLID = rw.clickID
	case "gbraid":
		c.GBRAID = rw.clickID
	default:
		c.WBRAID = rw.clickID
	}
	switch rw.consent {
	case "granted":
		c.Consent = &googleads.Consent{AdUserData: "GRANTED"}
	case "denied":
		c.Consent = &googleads.Consent{AdUserData: "DENIED"}
	}
	if w.opts.Ads == nil {
		return w.dryRun(ctx, rw, c)
	}
	outs, err := w.opts.Ads.UploadClickConversions(ctx, rw.customerID, []googleads.Conversion{c})
	if err != nil || len(outs) != 1 {
		return result{status: Published, class: ClassRetryLater, code: CodeTimeout, message: fmt.Sprintf("upload did not finish: %v", err), retryAt: now.Add(time.Minute)}
	}
	return adsResult(outs[0], now)
}

// adsResult maps a Google Ads outcome to the outbox's terms.
func adsResult(o googleads.Outcome, now time.Time) result {
	switch o.Status {
	case googleads.Uploaded:
		return result{status: Uploaded}
	case googleads.AlreadyUploaded:
		return result{status: Uploaded, code: o.Code, message: o.Message}
	case googleads.Permanent:
		return result{status: Failed, class: ClassPermanent, code: o.Code, message: o.Message}
	case googleads.ConfigError:
		return result{status: Failed, class: ClassConfigError, code: o.Code, message: o.Message}
	}
	at := o.RetryAt
	if !at.After(now) {
		at = now.Add(time.Second)
	}
	return result{status: Published, class: ClassRetryLater, code: o.Code, message: o.Message, retryAt: at}
}

// dryRun logs the request the client would send and counts it as uploaded.
func (w *Worker) dryRun(ctx context.Context, rw row, c googleads.Conversion) result {
	p, err := googleads.PreviewUpload(w.opts.AdsBaseURL, w.opts.AdsVersion, w.opts.AdsLoginCustomerID, rw.customerID, []googleads.Conversion{c})
	if err != nil {
		return result{status: Failed, class: ClassConfigError, code: googleads.CodeInvalidCustomerID, message: err.Error()}
	}
	w.opts.Logger.InfoContext(ctx, "sync-google-ads: dry run, no Google Ads credentials: this request was not sent",
		"conversion_id", rw.id, "request", p)
	return result{status: Uploaded, dryRun: true}
}

func (w *Worker) sendGA4(ctx context.Context, rw row) result {
	if rw.ga4ID == "" || rw.ga4Secret == "" {
		return result{status: Failed, class: ClassConfigError, code: CodeNotConfigured,
			message: "the site has no GA4 measurement id and API secret (opsmantik site set)"}
	}
	client, err := ga4.New(ga4.Config{BaseURL: w.opts.GA4BaseURL, MeasurementID: rw.ga4ID, APISecret: config.Secret(rw.ga4Secret), HTTPClient: w.opts.HTTPClient, Now: w.opts.Now})
	if err != nil {
		return result{status: Failed, class: ClassConfigError, code: CodeNotConfigured, message: err.Error()}
	}
	lead := ga4.Lead{VisitorID: rw.visitorID, Time: rw.convertedAt, Value: rw.value, Currency: rw.currency}
	switch rw.clickType {
	case "gclid":
		lead.GCLID = rw.clickID
	case "gbraid":
		lead.GBRAID = rw.clickID
	default:
		lead.WBRAID = rw.clickID
	}
	now := w.opts.Now()
	o, err := client.SendQualifiedLead(ctx, lead)
	if err != nil {
		return result{status: Published, class: ClassRetryLater, code: CodeTimeout, message: fmt.Sprintf("send did not finish: %v", err), retryAt: now.Add(time.Minute)}
	}
	switch o.Status {
	case ga4.Sent:
		return result{status: Uploaded}
	case ga4.Refused:
		return result{status: Failed, class: ClassPermanent, code: CodeGA4Refused, message: o.Reason}
	}
	at := o.RetryAt
	if !at.After(now) {
		at = now.Add(time.Second)
	}
	return result{status: Published, class: ClassRetryLater, code: CodeGA4Unavailable, message: o.Reason, retryAt: at}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
