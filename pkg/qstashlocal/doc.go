// Package qstashlocal is a local Upstash QStash for `opsmantik dev` and the
// tests (never deployed): an in-process HTTP server with QStash's publish API
// that delivers each message to its destination, signed and retried as QStash
// does. Upstash's own dev server downloads a binary when installed and cannot
// be installed here; this one is checked against the real Go SDK
// (github.com/upstash/qstash-go v1.0.0): its client publishes here and its
// Receiver verifies the deliveries.
//
// What it imitates:
//   - POST /v2/publish/{destination URL} (the URL as it is, query included,
//     or percent-encoded as a whole) with Authorization: Bearer <token>; a
//     missing or wrong token is answered 401 {"error": "..."}.
//   - Upstash-Retries (0 to Options.MaxRetries, the plan's limit, which is
//     also the default), Upstash-Delay (<number><unit>: 10s, 1m, 6h, 7d),
//     Upstash-Not-Before (unix seconds; it overrides the delay),
//     Upstash-Deduplication-Id and Upstash-Content-Based-Deduplication (a
//     10-minute window: a duplicate is answered 202 with the first message's
//     id and "deduplicated": true, and is not delivered again),
//     Upstash-Forward-<Name> (sent as <Name>), Upstash-Method,
//     Upstash-Timeout and Upstash-Failure-Callback.
//   - The answer 200 {"messageId": "msg_…", "deduplicated": false}; bad input
//     (destination, header values) 400 {"error": "..."}, a body beyond
//     Options.MaxBodyBytes 413.
//   - Delivery of the raw body with Content-Type, the forwarded headers,
//     User-Agent: Upstash-QStash, Upstash-Message-Id, Upstash-Retried (0 on the
//     first attempt), Upstash-Caller-Ip and Upstash-Signature: an HS256 JWT
//     signed with the current signing key, with iss "Upstash", sub the
//     destination URL, iat and nbf the time of the attempt, exp five minutes
//     later, a unique jti and body, the base64url SHA-256 of the raw body
//     without padding. Every attempt is signed anew.
//   - A 2xx is success; any other answer, a network error or a timeout is
//     retried after min(1 day, e^(2.5·n)) seconds (12s, 2m28s, 30m8s,
//     6h7m6s, 24h, …), or after the answer's Retry-After (or
//     X-RateLimit-Reset…): seconds, an HTTP date or a duration such as 6m5s,
//     up to a day; beyond a day, the back-off. A 489 with
//     Upstash-NonRetryable-Error: true fails at once. After the last retry the
//     message goes to the dead-letter list (DeadLetters) and, when it has one,
//     its failure callback is posted as a signed message of its own with a
//     FailureCallbackBody.
//   - Signing keys: CurrentSigningKey, NextSigningKey and RotateSigningKeys
//     (next becomes current, a new next is drawn), also as GET /v2/keys and
//     POST /v2/rotate.
//
// What it does not: URL groups, queues, batches, schedules, success
// callbacks, flow control, custom retry-delay expressions, the message, event
// and DLQ APIs, and persistence: everything lives in memory for the server's
// life (records and dedup ids included) and a restart forgets it. An
// Upstash-* publish header it does not imitate is refused with a 400, so that
// nothing silently behaves differently from QStash. Unlike QStash it delivers to
// loopback addresses, and it does not follow redirects (a 3xx is a failure).
//
// Time can be compressed: Options.Scale divides every wait of the delivery
// schedule (with 1000 the first back-off takes 12 ms), and Options.Clock
// takes a *ManualClock for exact tests, whose waits fire only when it is
// advanced. Every publish and attempt is recorded (Publishes, Attempts,
// Messages) with the unscaled waits, and WaitUntil / WaitIdle let a test wait
// for them without sleeping.
package qstashlocal
