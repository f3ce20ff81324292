// Package watchtower runs the system's health checks on a schedule and tells
// the operators through Telegram: an alarm when a check starts failing, a
// reminder every ALERT_REPEAT_EVERY while it lasts, and RESOLVED when it is
// over. Alert state lives in PostgreSQL (alert_state, see state.go).
//
// A check has three outcomes: it passes, it fails, or it is skipped (not
// judged, for want of data: WT003 below its minimum sample). Only a pass
// resolves and only a failure fires or repeats; a skipped check leaves its
// alert state as it is.
//
// WT000 DATABASE_UNREACHABLE means that the checks' queries cannot reach the
// database. An error in the alert-state bookkeeping itself (a failed update or
// commit of alert_state) is not WT000: the run returns an error that names the
// alert and the cause, Lambda logs it, and the next run retries.
//
// Known limits of WT000: it cannot be stored in the database it reports on,
// so its alert state lives in the memory of the process that raised it. That
// process sends it once, repeats it every ALERT_REPEAT_EVERY and sends
// RESOLVED when the database answers, as for every other check. A new
// process (a cold Lambda start) knows nothing of an earlier one: it sends
// WT000 at its first run that meets the outage, and a RESOLVED only for an
// outage it saw itself.
package watchtower

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// probeTimeout bounds the query that decides whether the database answers.
const probeTimeout = 10 * time.Second

// Watchtower runs the checks and keeps their alert state.
type Watchtower struct {
	db     *pgxpool.Pool
	sender telegram.Sender
	checks []Check
	repeat time.Duration
	now    func() time.Time
	logger *slog.Logger

	// WT000 cannot be kept in the database it reports on. This process
	// remembers that it raised it, so that it can send RESOLVED when the
	// database answers again (a new process cannot know, and sends nothing).
	mu                  sync.Mutex
	unreachableSince    time.Time
	unreachableNotified time.Time // when WT000 was last sent
}

// Options are the injectable parts; zero values are the defaults.
type Options struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
	Checks []Check          // default Checks(cfg)
}

// New returns a watchtower over db that sends through sender.
func New(db *pgxpool.Pool, sender telegram.Sender, cfg config.Alerting, opts Options) *Watchtower {
	w := &Watchtower{db: db, sender: sender, checks: opts.Checks, repeat: cfg.RepeatEvery, now: opts.Now, logger: opts.Logger}
	if w.checks == nil {
		w.checks = Checks(cfg)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.logger == nil {
		w.logger = slog.Default()
	}
	return w
}

// FromConfig builds the scheduled job of functions/watchtower-cron.
func FromConfig(ctx context.Context, cfg *config.Watchtower) (lambdahost.Job, error) {
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, err
	}
	client, err := telegram.New(cfg.Telegram, telegram.Options{})
	if err != nil {
		return nil, err
	}
	return withConversionSweep(pool, cfg, New(pool, client, cfg.Alerting, Options{Logger: cfg.Log.Logger()}).Job)
}

// Report is one run: every check's outcome, figures and what was sent.
type Report struct {
	At       time.Time     `json:"at"`
	Database string        `json:"database"` // ok | unreachable
	Checks   []CheckReport `json:"checks"`
}

// CheckReport is one check in a Report.
type CheckReport struct {
	Code    string         `json:"code"`
	Name    string         `json:"name"`
	Outcome string         `json:"outcome"` // pass | fail | error | skipped
	Alert   Alert          `json:"alert"`
	Figures map[string]any `json:"figures,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// Alert is what a run did about one check's alert.
type Alert string

const (
	AlertNone       Alert = "none"        // nothing sent: passing with nothing to resolve, or skipped (state left as it is)
	AlertFired      Alert = "fired"       // first message of an incident
	AlertRepeated   Alert = "repeated"    // reminder after ALERT_REPEAT_EVERY
	AlertNotDue     Alert = "not_due"     // failing, already told (by this or another run)
	AlertResolved   Alert = "resolved"    // RESOLVED sent
	AlertSendFailed Alert = "send_failed" // Telegram failed; state left for the next run
	AlertError      Alert = "error"       // the alert state could not be read or written
)

// Sent lists the checks that sent a message in this run.
func (r Report) Sent() []string {
	var codes []string
	for _, c := range r.Checks {
		switch c.Alert {
		case AlertFired, AlertRepeated, AlertResolved:
			codes = append(codes, c.Code+":"+string(c.Alert))
		}
	}
	return codes
}

// Job runs the watchtower once and logs one JSON line with the report. It is
// the function that EventBridge, `opsmantik dev` and `opsmantik run` call.
func (w *Watchtower) Job(ctx context.Context) error {
	start := time.Now()
	report, err := w.Run(ctx)
	level := slog.LevelInfo
	for _, c := range report.Checks {
		// A skipped check (too little data) is a quiet hour, as before it
		// was one; with the database down WT000 fails and warns.
		if c.Outcome != "pass" && c.Outcome != "skipped" {
			level = slog.LevelWarn
		}
	}
	attrs := []any{"database", report.Database, "checks", report.Checks, "sent", report.Sent(), "ms", time.Since(start).Milliseconds()}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, "err", err.Error())
	}
	w.logger.Log(ctx, level, "watchtower run", attrs...)
	return err
}

// Run measures every check and sends what is due. The error is non-nil when
// a message could not be sent or an alert's state could not be read or
// written (the next run retries both); a check whose query fails is reported
// through WT000 instead, and is an error only if sending that fails too.
func (w *Watchtower) Run(ctx context.Context) (Report, error) {
	now := w.now().UTC()
	report := Report{At: now, Database: "ok"}
	if err := w.probe(ctx); err != nil {
		report.Database = "unreachable"
		for _, c := range w.checks {
			report.Checks = append(report.Checks, CheckReport{Code: c.Code, Name: c.Name, Outcome: "skipped", Alert: AlertNone})
		}
		wt000, err := w.databaseUnreachable(ctx, now, []string{err.Error()}, "The other checks did not run.")
		report.Checks = append([]CheckReport{wt000}, report.Checks...)
		return report, err
	}

	var dbErrors []string
	var runErrors []error
	for _, c := range w.checks {
		r := CheckReport{Code: c.Code, Name: c.Name}
		out, err := c.Measure(ctx, w.db, now)
		if err != nil {
			r.Outcome, r.Alert, r.Error = "error", AlertNone, err.Error()
			dbErrors = append(dbErrors, c.Code+" "+c.Name+": "+err.Error())
			report.Checks = append(report.Checks, r)
			continue
		}
		r.Figures = out.Figures
		switch {
		case out.Skipped:
			// Not judged: no message, and the alert state is not touched.
			r.Outcome, r.Alert = "skipped", AlertNone
		case out.Failing:
			r.Outcome = "fail"
			r.Alert, err = w.fire(ctx, c, out, now)
		default:
			r.Outcome = "pass"
			r.Alert, err = w.resolve(ctx, c, out, now)
		}
		if err != nil {
			r.Error = err.Error()
			if r.Alert == AlertSendFailed {
				runErrors = append(runErrors, err)
			} else {
				// The bookkeeping failed, not the checks' queries: an
				// error for the job, not a WT000 to the operators.
				runErrors = append(runErrors, fmt.Errorf("%s %s alert state: %w", c.Code, c.Name, err))
			}
		}
		report.Checks = append(report.Checks, r)
	}

	var wt000 CheckReport
	var err error
	if len(dbErrors) > 0 {
		wt000, err = w.databaseUnreachable(ctx, now, dbErrors, "The checks above could not be judged.")
	} else {
		wt000, err = w.databaseAnswers(ctx, now)
	}
	report.Checks = append([]CheckReport{wt000}, report.Checks...)
	return report, errors.Join(append(runErrors, err)...)
}

func (w *Watchtower) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var one int
	return w.db.QueryRow(ctx, "SELECT 1").Scan(&one)
}

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

// databaseAnswers resolves WT000 if this process raised it.
func (w *Watchtower) databaseAnswers(ctx context.Context, now time.Time) (CheckReport, error) {
	c := DatabaseUnreachable()
	r := CheckReport{Code: c.Code, Name: c.Name, Outcome: "pass", Alert: AlertNone}
	w.mu.Lock()
	since := w.unreachableSince
	w.mu.Unlock()
	if since.IsZero() {
		return r, nil
	}
	text := fmt.Sprintf("%s %s\nThe database answers again, after %s (failing since %s).", c.Code, c.Name, humanDuration(now.Sub(since)), formatTime(since))
	if _, err := w.sender.SendMessage(ctx, text, telegram.Resolved); err != nil {
		r.Alert = AlertSendFailed
		return r, fmt.Errorf("send %s %s resolved: %w", c.Code, c.Name, err)
	}
	w.mu.Lock()
	w.unreachableSince, w.unreachableNotified = time.Time{}, time.Time{}
	w.mu.Unlock()
	r.Alert = AlertResolved
	return r, nil
}
