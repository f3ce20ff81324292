package conversions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/upstash/qstash-go"

	"github.com/opsmantik/opsmantik/pkg/config"
)

// PublishTimeout bounds one publish. The ingest handler publishes after its
// transaction and before it answers, so this is what a QStash outage can add
// to a qualifying batch's answer; the sweep publishes it later.
const PublishTimeout = 3 * time.Second

// markTimeout bounds the update that records a publish: it runs even when
// the request that published has ended, so that the row does not look
// unpublished to the sweep.
const markTimeout = 2 * time.Second

// PublisherOptions are the injectable parts; zero values are the defaults.
type PublisherOptions struct {
	// HTTPClient reaches QStash; default one with a PublishTimeout timeout.
	// qstash-go takes no context, so the client's timeout is what bounds a call.
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
}

// Publisher hands outbox rows to QStash for the worker (ingest.Publisher).
type Publisher struct {
	db      *pgxpool.Pool
	client  *qstash.Client
	dest    string
	retries int
	now     func() time.Time
	logger  *slog.Logger
}

// NewPublisher makes a publisher for cfg, which must have a token and the
// worker's URL.
func NewPublisher(db *pgxpool.Pool, cfg config.QStashPublish, opts PublisherOptions) (*Publisher, error) {
	if !cfg.Configured() || cfg.WorkerURL == "" {
		return nil, errors.New("conversions: publishing needs QSTASH_TOKEN and SYNC_GOOGLE_ADS_URL")
	}
	// qstash-go takes its base URL from QSTASH_URL in the environment over
	// the one it is given: refuse to publish somewhere else than configured.
	if env := os.Getenv("QSTASH_URL"); env != "" && env != cfg.URL {
		return nil, fmt.Errorf("conversions: QSTASH_URL in the environment (%s) differs from the QStash configured (%s); qstash-go would use the environment's", env, cfg.URL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: PublishTimeout}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := qstash.NewClientWith(qstash.Options{Url: cfg.URL, Token: string(cfg.Token), Client: opts.HTTPClient})
	return &Publisher{db: db, client: client, dest: cfg.WorkerURL, retries: cfg.Retries, now: opts.Now, logger: opts.Logger}, nil
}

// PublisherFromConfig is NewPublisher when cfg has a token, and nil
// otherwise: without QStash new conversions stay pending (WT005 says so).
func PublisherFromConfig(db *pgxpool.Pool, cfg config.QStashPublish, logger *slog.Logger) (*Publisher, error) {
	if !cfg.Configured() {
		logger.Info("QSTASH_TOKEN is not set: conversions are not published and stay pending")
		return nil, nil
	}
	return NewPublisher(db, cfg, PublisherOptions{Logger: logger})
}

// Publish publishes each conversion. It never fails: a row it could not
// publish stays pending, is logged, and the sweep republishes it.
func (p *Publisher) Publish(ctx context.Context, conversionIDs []string) {
	for _, id := range conversionIDs {
		msg, err := p.PublishOne(ctx, id)
		switch {
		case err != nil && msg != "":
			p.logger.WarnContext(ctx, "conversion published, its row not updated", "conversion_id", id, "message_id", msg, "err", err.Error())
		case err != nil:
			p.logger.ErrorContext(ctx, "conversion publish failed; the sweep republishes it", "conversion_id", id, "err", err.Error())
		}
	}
}

// markPublishedSQL records a publish. The worker may already have claimed
// or finished the row (QStash can deliver before this runs): then only the
// message id is recorded and the status left as it is.
const markPublishedSQL = `
UPDATE conversions SET status = CASE WHEN status = 'pending' THEN 'published' ELSE status END,
       qstash_message_id = @message_id::text,
       published_at = coalesce(published_at, @now::timestamptz), updated_at = @now::timestamptz
WHERE id = @id::uuid`

// PublishOne publishes one conversion and records its message id. The
// deduplication id is the conversion's: QStash drops a second publish of it
// within 10 minutes.
func (p *Publisher) PublishOne(ctx context.Context, id string) (messageID string, err error) {
	return p.publish(ctx, id, id)
}

func (p *Publisher) publish(ctx context.Context, id, dedupID string) (messageID string, err error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("publish conversion %s: %w", id, err)
	}
	retries := p.retries
	res, err := p.client.PublishJSON(qstash.PublishJSONOptions{
		Url:             p.dest,
		Body:            map[string]any{"conversion_id": id},
		Retries:         &retries,
		DeduplicationId: dedupID,
	})
	if err != nil {
		return "", fmt.Errorf("publish conversion %s: %w", id, err)
	}
	if res.MessageId == "" {
		return "", fmt.Errorf("publish conversion %s: QStash answered no messageId", id)
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	if _, err := p.db.Exec(mctx, markPublishedSQL, pgx.NamedArgs{"id": id, "message_id": res.MessageId, "now": p.now()}); err != nil {
		// QStash has it: the delivery works whatever the row says, and a
		// republish by the sweep is deduplicated or finds the row done.
		return res.MessageId, fmt.Errorf("record publish of conversion %s (message %s): %w", id, res.MessageId, err)
	}
	p.logger.DebugContext(ctx, "conversion published", "conversion_id", id, "message_id", res.MessageId, "deduplicated", res.Deduplicated)
	return res.MessageId, nil
}
