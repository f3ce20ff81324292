// Package conversions moves qualified leads from the conversion outbox to
// Google Ads (and GA4) exactly once, whatever fails on the way: the outbox's
// states, the publisher that hands new rows to QStash, the sweep that
// republishes what it could not hand over, the sync-google-ads worker that
// QStash delivers to, and the backlog figures WT005 alarms on.
//
// The ingest transaction writes a row (sql/0006, pkg/ingest conversionSQL)
// and, after commit, the Publisher sends QStash {"conversion_id": id} for the
// worker's URL with the row's id as Upstash-Deduplication-Id and explicit
// retries. A row moves through these states:
//
//	pending   ── published to QStash ──▶ published
//	pending, published ── delivered, uploaded (or Google already had it) ──▶ uploaded
//	pending, published ── delivered, permanent or configuration error ──▶ failed
//	published ── QStash's last delivery failed transiently ──▶ pending (the sweep republishes it)
//
// A failed publish never fails the ingest request: the row stays pending and
// the Sweeper republishes rows pending longer than CONVERSION_REPUBLISH_AFTER
// (once any retry_after Google named has passed). The sweep also creates the
// rows of qualified sessions whose site got its destinations after the score
// crossed and that send no more batches (BackfillWindow, MaxPerRun).
//
// The Worker verifies Upstash-Signature (current, then next signing key)
// against its own configured URL and the raw body before it touches
// anything, then claims the row with a conditional UPDATE (claim_id,
// claimed_until: sql/0007), so that two deliveries of one message upload
// once; a worker that dies holding a claim loses it when the lease ends. The
// Google Ads order id is the conversion's id, so a repeat that does reach
// Google answers ORDER_ID_ALREADY_IN_USE, which counts as uploaded.
//
// Without Google Ads credentials the worker runs dry: it logs the exact
// request it would send (googleads.PreviewUpload) and marks the row uploaded
// with dry_run = true.
package conversions
