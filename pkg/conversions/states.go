package conversions

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Status is a conversion's state in the outbox (conversions.status).
type Status string

const (
	// Pending: written, not yet handed to QStash (or handed back by the
	// worker after QStash's last delivery failed).
	Pending Status = "pending"
	// Published: QStash has a message for it (qstash_message_id).
	Published Status = "published"
	// Uploaded: Google has it (or dry_run: it would have been sent).
	Uploaded Status = "uploaded"
	// Failed: it can never be uploaded as it is; last_error_code says why and
	// last_error_class whether an operator must act (config_error).
	Failed Status = "failed"
)

// Unfinished reports whether the worker still has to upload the row.
func (s Status) Unfinished() bool { return s == Pending || s == Published }

// Destinations, as conversions.destination stores them.
const (
	DestinationGoogleAds = "google_ads"
	DestinationGA4       = "ga4"
)

// Error classes, as conversions.last_error_class stores them (the kinds of
// googleads.Outcome that are not a success).
const (
	ClassRetryLater  = "retry_later"
	ClassPermanent   = "permanent"
	ClassConfigError = "config_error"
)

// Codes of this package's own, for failures no Google API named.
const (
	// CodeNotConfigured: the site no longer has the row's destination.
	CodeNotConfigured = "DESTINATION_NOT_CONFIGURED"
	// CodeGA4Refused: GA4 cannot take the lead (too old, no visitor id, a 4xx).
	CodeGA4Refused = "GA4_REFUSED"
	// CodeGA4Unavailable: GA4 or the network failed; try again.
	CodeGA4Unavailable = "GA4_UNAVAILABLE"
	// CodeTimeout: the upload did not finish within the worker's deadline.
	CodeTimeout = "TIMEOUT"
)

// Querier is what the read-only figures are measured with (a pool, a
// transaction; the watchtower's Querier is one).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
