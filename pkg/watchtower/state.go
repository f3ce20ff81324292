package watchtower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// How a run decides who sends: the conditional UPDATE below takes the row's
// lock and matches only when a message is due. The transaction stays open
// while Telegram is called; a second run's UPDATE waits for it, then finds
// the row already advanced and matches nothing. If Telegram fails, the
// transaction rolls back and the row is as it was, so the next run retries.
// (If the commit itself fails after Telegram accepted, a later run repeats
// the message: at least once, never lost.)

const ensureAlertRow = `
INSERT INTO alert_state (code, name) VALUES ($1, $2)
ON CONFLICT (code) DO NOTHING`

// $3 = now, $4 = now − repeat interval. SET expressions see the old row.
const claimFiring = `
UPDATE alert_state SET
    name             = $2,
    firing           = true,
    failing_since    = CASE WHEN firing THEN failing_since ELSE $3 END,
    notifications    = CASE WHEN firing THEN notifications + 1 ELSE 1 END,
    resolved_at      = CASE WHEN firing THEN resolved_at END,
    last_notified_at = $3,
    figures          = $5,
    updated_at       = now()
WHERE code = $1 AND (NOT firing OR last_notified_at <= $4)
RETURNING failing_since, notifications`

const claimResolved = `
UPDATE alert_state SET
    firing      = false,
    resolved_at = $2,
    figures     = $3,
    updated_at  = now()
WHERE code = $1 AND firing
RETURNING failing_since, notifications`

// fire notifies a failing check when that is due: it starts failing, or the
// last message is at least the repeat interval old.
func (w *Watchtower) fire(ctx context.Context, c Check, out Outcome, now time.Time) (Alert, error) {
	if _, err := w.db.Exec(ctx, ensureAlertRow, c.Code, c.Name); err != nil {
		return AlertError, fmt.Errorf("create alert state: %w", err)
	}
	return w.transition(ctx, c, func(tx pgx.Tx, figures []byte) (string, telegram.Level, Alert, error) {
		var since time.Time
		var n int
		err := tx.QueryRow(ctx, claimFiring, c.Code, c.Name, now, now.Add(-w.repeat), figures).Scan(&since, &n)
		if err != nil {
			return "", "", AlertNotDue, err
		}
		alert := AlertFired
		if n > 1 {
			alert = AlertRepeated
		}
		return firingMessage(c, out, since, n, now, w.repeat), c.Level, alert, nil
	}, out)
}

// resolve sends RESOLVED for a passing check that was firing.
func (w *Watchtower) resolve(ctx context.Context, c Check, out Outcome, now time.Time) (Alert, error) {
	return w.transition(ctx, c, func(tx pgx.Tx, figures []byte) (string, telegram.Level, Alert, error) {
		var since time.Time
		var n int
		if err := tx.QueryRow(ctx, claimResolved, c.Code, now, figures).Scan(&since, &n); err != nil {
			return "", "", AlertNone, err
		}
		return resolvedMessage(c, out, since, now), telegram.Resolved, AlertResolved, nil
	}, out)
}

// transition runs claim in a transaction and commits it only once the
// message it asks for is sent. A claim that matches no row returns its
// alert (not due, or nothing to resolve) and sends nothing.
func (w *Watchtower) transition(ctx context.Context, c Check,
	claim func(tx pgx.Tx, figures []byte) (text string, level telegram.Level, alert Alert, err error), out Outcome,
) (Alert, error) {
	figures, err := json.Marshal(out.Figures)
	if err != nil {
		return AlertError, fmt.Errorf("encode figures: %w", err)
	}
	tx, err := w.db.Begin(ctx)
	if err != nil {
		return AlertError, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	text, level, alert, err := claim(tx, figures)
	if errors.Is(err, pgx.ErrNoRows) {
		return alert, nil
	}
	if err != nil {
		return AlertError, fmt.Errorf("update alert state: %w", err)
	}
	if _, err := w.sender.SendMessage(ctx, text, level); err != nil {
		return AlertSendFailed, fmt.Errorf("send %s %s: %w", c.Code, c.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return AlertError, fmt.Errorf("commit alert state after sending: %w", err)
	}
	return alert, nil
}

// firingMessage is the plain text of an alarm (the client adds the prefix
// and escapes it).
func firingMessage(c Check, out Outcome, since time.Time, n int, now time.Time, repeat time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n%s\n", c.Code, c.Name, out.Summary)
	writeFigures(&b, out.Figures)
	if n > 1 {
		fmt.Fprintf(&b, "Still failing after %s (since %s). Reminder %d; repeated every %s until it passes.",
			humanDuration(now.Sub(since)), formatTime(since), n-1, humanDuration(repeat))
	} else {
		fmt.Fprintf(&b, "Failing since %s. Repeated every %s while it lasts.", formatTime(since), humanDuration(repeat))
	}
	return b.String()
}

func resolvedMessage(c Check, out Outcome, since, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\nPassing again after %s (failing since %s).\n%s\n",
		c.Code, c.Name, humanDuration(now.Sub(since)), formatTime(since), out.Summary)
	writeFigures(&b, out.Figures)
	return strings.TrimRight(b.String(), "\n")
}

func writeFigures(b *strings.Builder, figures map[string]any) {
	keys := make([]string, 0, len(figures))
	for k := range figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s: %v\n", k, figures[k])
	}
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// humanDuration is "7h", "1d 2h 5m", "15m" or "less than a minute".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "less than a minute"
	}
	var parts []string
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.size; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.name))
			d -= n * u.size
		}
	}
	return strings.Join(parts, " ")
}
