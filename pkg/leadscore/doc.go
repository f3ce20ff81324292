// Package leadscore scores a session as a sales lead, 0 to 100, from the
// session's aggregates. It is a pure function with one table of weights
// ([Weights], [Default]); the ingest path recomputes it on every batch, and a
// session is a qualified lead when its score is greater than its site's
// threshold ([Qualified], [DefaultThreshold] = 80).
//
// # Default weights
//
//	aggregate               points
//	first phone click       45
//	first WhatsApp click    40
//	first form submit       50
//	each further click or   +10, at most +20 per kind
//	  submit of that kind
//	engaged time            ≥ 30 s: 5, ≥ 2 min: 10, ≥ 5 min: 15  (best tier only)
//	deepest scroll          ≥ 50 %: 5, ≥ 90 %: 10                 (best tier only)
//	pageviews               ≥ 2: 5, ≥ 4: 10                       (best tier only)
//	returning visitor       5
//
// The sum is capped at 100; negative aggregates count as zero. Engagement alone
// reaches at most 15 + 10 + 10 + 5 = 40, so no session qualifies at the default
// threshold without a conversion: the score ranks leads, it does not invent them.
// The score never decreases when an aggregate grows, so recomputing it as a
// session's counters merge upward never takes a qualification back.
//
// # Worked examples
//
// Each one is an Example test in this package, so these figures are checked.
//
// A visitor from an ad reads the landing page for 45 s, scrolls 60 % down and
// taps the phone number: 45 (phone) + 5 (≥ 30 s) + 5 (≥ 50 %) = 55. Not qualified.
//
// A returning visitor views 4 pages over 2 min 10 s, scrolls to 90 % and sends
// the contact form: 50 (form) + 10 (≥ 2 min) + 10 (≥ 90 %) + 10 (≥ 4 pageviews)
// + 5 (returning) = 85. Qualified, since 85 > 80.
//
// A visitor sends the form four times and stays 2 min: 50 + 20 (three further
// submits, capped at +20) + 10 (≥ 2 min) = 80. Not qualified: the score must be
// greater than the threshold, and 80 is not greater than 80.
//
// A visitor taps the phone number and the WhatsApp link, stays 6 min, scrolls
// to the end of 3 pages: 45 + 40 + 15 (≥ 5 min) + 10 (≥ 90 %) + 5 (≥ 2 pageviews)
// = 115, capped at 100.
//
// A returning reader with no conversion, 6 pages, 6 min, 100 % scroll:
// 15 + 10 + 10 + 5 = 40.
package leadscore
