// Package watchtower runs the system's health checks on a schedule and tells
// the operators through Telegram: an alarm when a check starts failing, a
// reminder every ALERT_REPEAT_EVERY while it lasts, and RESOLVED when it is
// over. Alert state lives in PostgreSQL (alert_state, see state.go), one row
// per (check, site): the whole installation, and each site that a check
// judges on its own (WT001 and WT002 against the site's own history, see
// baseline.go). The sites of one check that are due go out in one message.
//
// A check has three outcomes: it passes, it fails, or it is skipped (not
// judged, for want of data: WT003 below its minimum sample, a site with no
// history). Only a pass resolves and only a failure fires or repeats; a
// skipped check leaves its alert state as it is.
//
// A check that cannot be judged because its query failed is one of two
// alarms: WT000 DATABASE_UNREACHABLE when the database cannot be reached (a
// connection error, see classify.go), WT009 CHECK_FAILED, naming the check,
// when it answered with an error or the query timed out. WT009 goes through
// alert_state; WT000 cannot, and is resolved from the time of the last
// successful run (watchtower_runs, see runs.go).
//
// An error in the alert-state bookkeeping itself (a failed update or commit
// of alert_state) is neither: the run returns an error that names the alert
// and the cause, Lambda logs it, and the next run retries.
//
// Each run also deletes ingest counters older than 30 days, a bounded batch
// at a time (retention.go).
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
	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// probeTimeout bounds the query that decides whether the database answers.
const probeTimeout = 10 * time.Second

// defaultInterval is WATCHTOWER_INTERVAL's default.
const defaultInterval = 15 * time.Minute

// defaultCheckTimeout bounds each check, so that one slow query is a WT009
// of its own and leaves time for the others (the Lambda has 60 s).
const defaultCheckTimeout = 15 * time.Second

// Watchtower runs the checks and keeps their alert state.
type Watchtower struct {
	db           *pgxpool.Pool
	sender       telegram.Sender
	checks       []Check
	repeat       time.Duration
	repeatEarly  time.Duration // see NewAlerts; zero for the watchtower
	interval     time.Duration
	checkTimeout time.Duration
	now          func() time.Time
	logger       *slog.Logger

	// WT000 cannot be kept in the database it reports on. This process
	// remembers that it raised it, to repeat it and to resolve it (runs.go).
	mu                  sync.Mutex
	unreachableSince    time.Time
	unreachableNotified time.Time // when WT000 was last sent
}

// Options are the injectable parts; zero values are the defaults.
type Options struct {
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger     // default slog.Default()
	Checks       []Check          // default Checks(cfg)
	CheckTimeout time.Duration    // default 15 s per check
}

// New returns a watchtower over db that sends through sender.
func New(db *pgxpool.Pool, sender telegram.Sender, cfg config.Alerting, opts Options) *Watchtower {
	w := &Watchtower{db: db, sender: sender, checks: opts.Checks, repeat: cfg.RepeatEvery, interval: cfg.Interval,
		checkTimeout: opts.CheckTimeout, now: opts.Now, logger: opts.Logger}
	if w.checks == nil {
		w.checks = Checks(cfg)
	}
	if w.checkTimeout <= 0 {
		w.checkTimeout = defaultCheckTimeout
	}
	if w.interval <= 0 {
		w.interval = defaultInterval // a hand-built config.Alerting
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
func FromConfig(ctx context.Context, cfg *config.Watchtower) (func(context.Context) error, error) {
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
	// Retention is how many old rows the run deleted, per table.
	Retention map[string]int64 `json:"retention,omitempty"`
}

// CheckReport is one check in a Report. Outcome and Alert are the
// installation's; Sites lists the sites that fail or whose alert did
// something (the passing rest are only counted).
type CheckReport struct {
	Code         string         `json:"code"`
	Name         string         `json:"name"`
	Outcome      string         `json:"outcome"` // pass | fail | error | skipped
	Alert        Alert          `json:"alert"`
	Figures      map[string]any `json:"figures,omitempty"`
	Error        string         `json:"error,omitempty"`
	SitesJudged  int            `json:"sites_judged,omitempty"`
	SitesFailing int            `json:"sites_failing,omitempty"`
	Sites        []SiteReport   `json:"sites,omitempty"`
}

// SiteReport is one site's verdict and alert within a CheckReport.
type SiteReport struct {
	Site
	Outcome string         `json:"outcome"` // pass | fail
	Alert   Alert          `json:"alert"`
	Figures map[string]any `json:"figures,omitempty"`
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

// Sent lists the alerts that sent a message in this run: "WT001:fired" for
// the installation, "WT001/shop1:fired" for a site.
func (r Report) Sent() []string {
	var codes []string
	sent := func(a Alert) bool { return a == AlertFired || a == AlertRepeated || a == AlertResolved }
	for _, c := range r.Checks {
		if sent(c.Alert) {
			codes = append(codes, c.Code+":"+string(c.Alert))
		}
		for _, s := range c.Sites {
			if sent(s.Alert) {
				codes = append(codes, c.Code+"/"+s.PublicID+":"+string(s.Alert))
			}
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
		if (c.Outcome != "pass" && c.Outcome != "skipped") || c.SitesFailing > 0 {
			level = slog.LevelWarn
		}
	}
	attrs := []any{"database", report.Database, "checks", report.Checks, "sent", report.Sent(),
		"retention", report.Retention, "ms", time.Since(start).Milliseconds()}
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
// through WT000 or WT009 instead, and is an error only if sending that fails
// too.
func (w *Watchtower) Run(ctx context.Context) (Report, error) {
	now := w.now().UTC()
	report := Report{At: now, Database: "ok"}
	wt009 := CheckFailed()
	if err := w.probe(ctx); err != nil {
		report.Database = "unreachable"
		for _, c := range append(append([]Check(nil), w.checks...), wt009) {
			report.Checks = append(report.Checks, CheckReport{Code: c.Code, Name: c.Name, Outcome: "skipped", Alert: AlertNone})
		}
		wt000, err := w.databaseUnreachable(ctx, now, []string{err.Error()}, "The other checks did not run.")
		report.Checks = append([]CheckReport{wt000}, report.Checks...)
		return report, err
	}

	var unreachable []string   // checks that could not reach the database (WT000)
	failed := map[string]any{} // checks whose query failed otherwise (WT009)
	var failedNames []string   // the same, in order
	var runErrors []error
	for _, c := range w.checks {
		r := CheckReport{Code: c.Code, Name: c.Name}
		out, err := w.measure(ctx, c, now)
		if err != nil {
			r.Outcome, r.Alert, r.Error = "error", AlertNone, err.Error()
			if connectionError(err) {
				unreachable = append(unreachable, c.Code+" "+c.Name+": "+err.Error())
			} else {
				failed[c.Code+" "+c.Name] = err.Error()
				failedNames = append(failedNames, c.Code+" "+c.Name)
			}
			report.Checks = append(report.Checks, r)
			continue
		}
		runErrors = append(runErrors, w.judge(ctx, c, out, now, &r)...)
		report.Checks = append(report.Checks, r)
	}

	// WT009: judged when every check either ran or failed with the database
	// answering; a check that could not reach it says nothing either way.
	out := Outcome{Summary: "Every check ran.", Figures: map[string]any{}}
	switch {
	case len(failed) > 0:
		out = Outcome{Failing: true, Figures: failed,
			Summary: fmt.Sprintf("%s could not be judged (%s): the database answers, but the query failed. Their own alerts are left as they were until they run again.",
				plural(len(failed), "check"), strings.Join(failedNames, ", "))}
	case len(unreachable) > 0:
		out.Skipped = true
	}
	r := CheckReport{Code: wt009.Code, Name: wt009.Name}
	runErrors = append(runErrors, w.judge(ctx, wt009, out, now, &r)...)
	report.Checks = append(report.Checks, r)

	var wt000 CheckReport
	var err error
	if len(unreachable) > 0 {
		wt000, err = w.databaseUnreachable(ctx, now, unreachable, "The checks above could not be judged.")
	} else {
		var rerr error
		if report.Retention, rerr = w.retain(ctx, now); rerr != nil {
			runErrors = append(runErrors, rerr)
		}
		wt000, err = w.databaseAnswers(ctx, now)
	}
	report.Checks = append([]CheckReport{wt000}, report.Checks...)
	return report, errors.Join(append(runErrors, err)...)
}

// measure runs one check within its time budget.
func (w *Watchtower) measure(ctx context.Context, c Check, now time.Time) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, w.checkTimeout)
	defer cancel()
	return c.Measure(ctx, w.db, now)
}

// judge fires, repeats or resolves what out says, for the installation and
// for each site, and fills r.
func (w *Watchtower) judge(ctx context.Context, c Check, out Outcome, now time.Time, r *CheckReport) []error {
	var errs []error
	wrap := func(err error) error {
		var send *sendError
		if errors.As(err, &send) {
			return err
		}
		// The bookkeeping failed, not the checks' queries: an error for
		// the job, not a WT000 to the operators.
		return fmt.Errorf("%s %s alert state: %w", c.Code, c.Name, err)
	}
	if !out.SitesOnly {
		r.Figures = out.Figures
		var err error
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
			errs = append(errs, wrap(err))
		}
	} else {
		r.Outcome, r.Alert = "pass", AlertNone
	}
	if len(out.Sites) == 0 {
		return errs
	}
	r.SitesJudged = len(out.Sites)
	for _, s := range out.Sites {
		if s.Failing {
			r.SitesFailing++
		}
	}
	if out.SitesOnly && r.SitesFailing > 0 {
		r.Outcome = "fail"
	}
	sites, siteErrs := w.judgeSites(ctx, c, out, now)
	r.Sites = sites
	for _, err := range siteErrs {
		if r.Error != "" {
			r.Error += "; "
		}
		r.Error += err.Error()
		errs = append(errs, wrap(err))
	}
	return errs
}

func (w *Watchtower) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var one int
	return w.db.QueryRow(ctx, "SELECT 1").Scan(&one)
}
