package watchtower

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// Alerts is the alert state of checks that another job measures (the
// integrity audit's, pkg/audit): the same alert_state rows per (check,
// site), the same messages and the same guarantees as the watchtower's own
// checks. A retried or overlapping run sends once, a lasting failure is
// repeated every repeat, and a check or site that passes again sends
// RESOLVED (see state.go).
type Alerts struct{ w *Watchtower }

// NewAlerts keeps alert state in db and sends through sender. A failing
// alert is repeated once its last message is at least repeat − early old:
// early lets a job whose runs are never exactly repeat apart (a daily
// schedule fires within a minute or so of its time) repeat at every run.
// The messages name repeat itself.
func NewAlerts(db *pgxpool.Pool, sender telegram.Sender, repeat, early time.Duration) *Alerts {
	return &Alerts{w: &Watchtower{db: db, sender: sender, repeat: repeat, repeatEarly: early,
		now: time.Now, logger: slog.Default()}}
}

// Judge fires, repeats or resolves what out says about c, for the
// installation and for each site in out.Sites (c.Measure is not called), and
// reports what it did. The error is non-nil when a message could not be sent
// or the alert state could not be read or written; the next run retries both.
func (a *Alerts) Judge(ctx context.Context, c Check, out Outcome, now time.Time) (CheckReport, error) {
	r := CheckReport{Code: c.Code, Name: c.Name}
	errs := a.w.judge(ctx, c, out, now.UTC(), &r)
	return r, errors.Join(errs...)
}
