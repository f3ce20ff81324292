package watchtower

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// WT000 on Lambda. A run that cannot reach the database cannot store that
// it could not; what a run that reaches it can store is that it did
// (watchtower_runs.last_success_at). So:
//
//   - While the database is unreachable, each process sends WT000 at its
//     first run that meets the outage, and repeats it every
//     ALERT_REPEAT_EVERY from its own memory. Lambda keeps a warm process
//     for many runs, so that is the usual case; a cold start is a fresh
//     process that sends WT000 again (best effort: a repeat too many rather
//     than an outage kept quiet).
//   - The first successful run after a gap — no successful run for more
//     than two intervals (WATCHTOWER_INTERVAL) — sends RESOLVED with the
//     span as far as it is known: from the last successful run to now. A
//     process that saw the outage itself resolves it too, gap or not.
//     A shorter outage that only one run met (one missed interval) is
//     resolved only by the process that raised it.
//
// The row is read FOR UPDATE and the lock held until Telegram took the
// RESOLVED, as for alert_state: two runs after a gap send it once, and a
// failed send leaves the old time for the next run to retry.

const (
	lockLastRun   = `SELECT last_success_at FROM watchtower_runs WHERE id FOR UPDATE`
	insertLastRun = `INSERT INTO watchtower_runs (id, last_success_at) VALUES (true, $1) ON CONFLICT (id) DO NOTHING`
	updateLastRun = `UPDATE watchtower_runs SET last_success_at = greatest(last_success_at, $1::timestamptz) WHERE id`
)

// databaseUnreachable sends WT000 when this process first meets the outage
// and again every ALERT_REPEAT_EVERY while it lasts.
func (w *Watchtower) databaseUnreachable(ctx context.Context, now time.Time, problems []string, consequence string) (CheckReport, error) {
	c := DatabaseUnreachable()
	r := CheckReport{Code: c.Code, Name: c.Name, Outcome: "fail", Alert: AlertFired, Error: strings.Join(problems, "; ")}
	w.mu.Lock()
	if w.unreachableSince.IsZero() {
		w.unreachableSince = now
	}
	since, notified := w.unreachableSince, w.unreachableNotified
	w.mu.Unlock()
	if !notified.IsZero() {
		if now.Sub(notified) < w.repeat {
			r.Alert = AlertNotDue
			return r, nil
		}
		r.Alert = AlertRepeated
	}
	text := fmt.Sprintf("%s %s\nThe watchtower cannot query the database. %s\n%s\nFailing since %s (as seen by this process).",
		c.Code, c.Name, consequence, strings.Join(problems, "\n"), formatTime(since))
	if _, err := w.sender.SendMessage(ctx, text, c.Level); err != nil {
		r.Alert = AlertSendFailed
		return r, fmt.Errorf("send %s %s: %w", c.Code, c.Name, err)
	}
	w.mu.Lock()
	w.unreachableNotified = now
	w.mu.Unlock()
	return r, nil
}

// databaseAnswers records a successful run and resolves WT000 after a gap
// or an outage this process saw.
func (w *Watchtower) databaseAnswers(ctx context.Context, now time.Time) (CheckReport, error) {
	c := DatabaseUnreachable()
	r := CheckReport{Code: c.Code, Name: c.Name, Outcome: "pass", Alert: AlertNone}
	w.mu.Lock()
	seen := w.unreachableSince
	w.mu.Unlock()

	fail := func(err error) (CheckReport, error) {
		r.Alert = AlertError
		return r, fmt.Errorf("%s %s last successful run: %w", c.Code, c.Name, err)
	}
	tx, err := w.db.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var last time.Time
	err = tx.QueryRow(ctx, lockLastRun).Scan(&last)
	known := err == nil
	switch {
	case errors.Is(err, pgx.ErrNoRows): // the first run ever
		_, err = tx.Exec(ctx, insertLastRun, now)
	case err == nil:
		_, err = tx.Exec(ctx, updateLastRun, now)
	}
	if err != nil {
		return fail(err)
	}
	gap := known && now.Sub(last) > 2*w.interval
	if known {
		r.Figures = map[string]any{"last_success_at": formatTime(last), "interval": humanDuration(w.interval)}
	}
	if gap || !seen.IsZero() {
		text := resolvedUnreachableMessage(c, now, last, known, seen)
		if _, err := w.sender.SendMessage(ctx, text, telegram.Resolved); err != nil {
			r.Alert = AlertSendFailed
			return r, fmt.Errorf("send %s %s resolved: %w", c.Code, c.Name, err)
		}
		r.Alert = AlertResolved
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	w.mu.Lock()
	w.unreachableSince, w.unreachableNotified = time.Time{}, time.Time{}
	w.mu.Unlock()
	return r, nil
}

// resolvedUnreachableMessage gives the outage's span as far as it is known:
// it began after the last successful run (last, when known) and was seen by
// this process from seen (when it saw it).
func resolvedUnreachableMessage(c Check, now, last time.Time, known bool, seen time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\nThe database answers again", c.Code, c.Name)
	switch {
	case known && !seen.IsZero() && seen.After(last):
		fmt.Fprintf(&b, ", after an outage of %s to %s (failing since %s as seen by this process; the last run that reached it was at %s).",
			humanDuration(now.Sub(seen)), humanDuration(now.Sub(last)), formatTime(seen), formatTime(last))
	case !seen.IsZero():
		fmt.Fprintf(&b, ", after %s (failing since %s as seen by this process).", humanDuration(now.Sub(seen)), formatTime(seen))
	default:
		// Nobody can tell an outage from a watchtower that did not run
		// (a paused schedule, a laptop asleep); the text says both.
		fmt.Fprintf(&b, ". No watchtower run reached it from %s (the last that did) until %s: an outage of at most %s, or a time the watchtower did not run.",
			formatTime(last), formatTime(now), humanDuration(now.Sub(last)))
	}
	return b.String()
}
