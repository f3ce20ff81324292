// Package audit checks the integrity of the data received in a window (by
// default the last 24 hours, AUDIT_WINDOW), per site, and alarms on Telegram
// when a check's anomalies pass a threshold (AUDIT_THRESHOLD_PERCENT, default
// 1 %). docs/audit.md says what each check means and what to do about it.
//
// The checks (checks.go) are AUD001 ORPHANED_EVENTS, AUD002 TIME_TRAVEL,
// AUD003 ATTRIBUTION_GAP, AUD004 COUNTER_DRIFT and AUD005
// MISSED_CONVERSION. Each is one query over every site at once, bounded by
// the window through BRIN indexes; it gives per site the count of
// anomalies, the denominator, their ratio and up to five sample ids.
//
// A run is recorded in audit_runs (window, start, end, duration, trigger)
// and what it found in audit_findings: one row per (check, site) with at
// least one anomaly, alarming or not. A site whose ratio is GREATER than the
// threshold fails its check; the alarm goes through the watchtower's alert
// state per (check, site) (watchtower.Alerts), so a retried or overlapping
// run sends once, a lasting problem is repeated at the next day's run, and
// a site back at or under the threshold sends RESOLVED. A site with no rows
// for a check in the window is not judged: its alert is left as it is.
//
// A check whose query fails is AUD000 AUDIT_FAILED (through the same alert
// state, naming the check); the run's status is then failed and Run returns
// an error, so that Lambda retries it.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// Triggers recorded in audit_runs.
const (
	TriggerSchedule = "schedule" // EventBridge (functions/audit-integrity)
	TriggerCLI      = "cli"      // opsmantik run audit
	TriggerDev      = "dev"      // opsmantik dev's daily schedule
)

// RepeatEvery is how often a lasting problem is repeated: at every daily
// run. RepeatEarly lets a run up to an hour early still repeat it, since a
// daily schedule never fires exactly 24 h after the last run; a retried run
// minutes later does not.
const (
	RepeatEvery = 24 * time.Hour
	RepeatEarly = time.Hour
)

// defaultCheckTimeout bounds each check's query, so that one slow check
// fails on its own and leaves time for the others and the alerts.
const defaultCheckTimeout = 45 * time.Second

// Auditor runs the checks and keeps their alert state.
type Auditor struct {
	db           *pgxpool.Pool
	alerts       *watchtower.Alerts
	checks       []Check
	window       time.Duration
	threshold    float64
	site         string
	trigger      string
	checkTimeout time.Duration
	now          func() time.Time
	logger       *slog.Logger
}

// Options are the injectable parts; zero values are the defaults.
type Options struct {
	Now     func() time.Time // default time.Now
	Logger  *slog.Logger     // default slog.Default()
	Trigger string           // default TriggerSchedule
	// Site restricts a run to one site, by public id; "" audits every site.
	Site         string
	Checks       []Check       // default Checks()
	CheckTimeout time.Duration // default 45 s per check
}

// New returns an auditor over db that sends through sender.
func New(db *pgxpool.Pool, sender telegram.Sender, cfg config.Auditing, opts Options) *Auditor {
	a := &Auditor{db: db, alerts: watchtower.NewAlerts(db, sender, RepeatEvery, RepeatEarly),
		checks: opts.Checks, window: cfg.Window, threshold: cfg.ThresholdPercent, site: opts.Site,
		trigger: opts.Trigger, checkTimeout: opts.CheckTimeout, now: opts.Now, logger: opts.Logger}
	if a.checks == nil {
		a.checks = Checks()
	}
	if a.trigger == "" {
		a.trigger = TriggerSchedule
	}
	if a.checkTimeout <= 0 {
		a.checkTimeout = defaultCheckTimeout
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	return a
}

// FromConfig builds the scheduled job of functions/audit-integrity.
func FromConfig(ctx context.Context, cfg *config.Audit) (func(context.Context) error, error) {
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, err
	}
	client, err := telegram.New(cfg.Telegram, telegram.Options{})
	if err != nil {
		return nil, err
	}
	return New(pool, client, cfg.Auditing, Options{Logger: cfg.Log.Logger(), Trigger: TriggerSchedule}).Job, nil
}

// ErrUnknownSite is returned when the site to audit does not exist.
var ErrUnknownSite = errors.New("unknown site")

// Finding is one check's figures for one site in the window.
type Finding struct {
	Count        int64    `json:"count"`
	Denominator  int64    `json:"denominator"`
	RatioPercent float64  `json:"ratio_percent"`
	Samples      []string `json:"samples,omitempty"`
	// Alarm: the ratio is greater than the threshold.
	Alarm bool `json:"alarm"`
}

// Report is one run.
type Report struct {
	RunID            int64         `json:"run_id"`
	Trigger          string        `json:"trigger"`
	Site             string        `json:"site,omitempty"`
	Window           Window        `json:"window"`
	ThresholdPercent float64       `json:"threshold_percent"`
	Checks           []CheckReport `json:"checks"`
	// Failed is AUD000's report: the checks that could not run.
	Failed watchtower.CheckReport `json:"audit_failed"`
}

// CheckReport is one check in a Report: totals over the sites it judged,
// and the sites with anomalies or whose alert did something (the clean rest
// are only counted).
type CheckReport struct {
	Code        string       `json:"code"`
	Name        string       `json:"name"`
	Outcome     string       `json:"outcome"` // ok | error
	Error       string       `json:"error,omitempty"`
	SitesJudged int          `json:"sites_judged"`
	Denominator int64        `json:"denominator"` // summed over the sites
	Anomalies   int64        `json:"anomalies"`
	Alarms      int          `json:"alarms"`
	MS          int64        `json:"ms"`
	Sites       []SiteReport `json:"sites,omitempty"`
}

// SiteReport is one site's finding and alert within a CheckReport.
type SiteReport struct {
	watchtower.Site
	Finding
	Alert watchtower.Alert `json:"alert"`
}

// Sent lists the alerts that sent a message: "AUD001/shop:fired".
func (r Report) Sent() []string {
	var sent []string
	did := func(a watchtower.Alert) bool {
		return a == watchtower.AlertFired || a == watchtower.AlertRepeated || a == watchtower.AlertResolved
	}
	for _, c := range r.Checks {
		for _, s := range c.Sites {
			if did(s.Alert) {
				sent = append(sent, c.Code+"/"+s.PublicID+":"+string(s.Alert))
			}
		}
	}
	if did(r.Failed.Alert) {
		sent = append(sent, r.Failed.Code+":"+string(r.Failed.Alert))
	}
	return sent
}

// Finding returns the finding of check code for the site with public id
// publicID, and whether the report lists one.
func (r Report) Finding(code, publicID string) (SiteReport, bool) {
	for _, c := range r.Checks {
		if c.Code != code {
			continue
		}
		for _, s := range c.Sites {
			if s.PublicID == publicID {
				return s, true
			}
		}
	}
	return SiteReport{}, false
}

// Job runs the audit once and logs one JSON line with the report: every
// check's totals and every finding with its figures, under the threshold
// too. It is the function that EventBridge, `opsmantik dev` and `opsmantik
// run audit` call.
func (a *Auditor) Job(ctx context.Context) error {
	start := time.Now()
	report, err := a.Run(ctx)
	level := slog.LevelInfo
	for _, c := range report.Checks {
		if c.Outcome != "ok" || c.Alarms > 0 || c.Error != "" {
			level = slog.LevelWarn
		}
	}
	attrs := []any{"run_id", report.RunID, "trigger", report.Trigger, "window", report.Window,
		"threshold_percent", report.ThresholdPercent, "checks", report.Checks, "audit_failed", report.Failed, "sent", report.Sent(),
		"ms", time.Since(start).Milliseconds()}
	if report.Site != "" {
		attrs = append(attrs, "site", report.Site)
	}
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, "err", err.Error())
	}
	a.logger.Log(ctx, level, "audit run", attrs...)
	return err
}

// Run audits the window that ends now, stores the run and its findings,
// and sends what is due. The error is non-nil when a check could not run
// (AUD000 reports it too), when a message could not be sent or alert state
// could not be written (the next run retries), or when the run could not
// be stored.
func (a *Auditor) Run(ctx context.Context) (Report, error) {
	started := time.Now()
	now := a.now().UTC()
	w := Window{From: now.Add(-a.window), To: now}
	report := Report{Trigger: a.trigger, Site: a.site, Window: w, ThresholdPercent: a.threshold}

	sites, siteID, err := a.sites(ctx)
	if err != nil {
		return report, err
	}
	report.RunID, err = startRun(ctx, a.db, report, siteID, now)
	if err != nil {
		return report, err
	}

	type measured struct {
		check Check
		rows  []siteRow
	}
	var done []measured
	failed := map[string]any{}
	var failedNames []string
	for _, c := range a.checks {
		t0 := time.Now()
		rows, err := a.measure(ctx, c, w, siteID)
		cr := CheckReport{Code: c.Code, Name: c.Name, Outcome: "ok", MS: time.Since(t0).Milliseconds()}
		if err != nil {
			cr.Outcome, cr.Error = "error", err.Error()
			failed[c.Code+" "+c.Name] = err.Error()
			failedNames = append(failedNames, c.Code+" "+c.Name)
		} else {
			done = append(done, measured{c, rows})
		}
		report.Checks = append(report.Checks, cr)
	}

	// Store every finding before alerting: a run that cannot send still
	// leaves what it found.
	var findings []storedFinding
	for _, m := range done {
		for _, r := range m.rows {
			if r.count > 0 {
				findings = append(findings, storedFinding{check: m.check, siteID: r.siteID, finding: a.finding(r)})
			}
		}
	}
	var errs []error
	if err := storeFindings(ctx, a.db, report.RunID, findings); err != nil {
		errs = append(errs, err)
	}

	for _, m := range done {
		i := indexOf(report.Checks, m.check.Code)
		cr, err := a.judge(ctx, m.check, m.rows, sites, w, now)
		cr.MS = report.Checks[i].MS
		report.Checks[i] = cr
		if err != nil {
			errs = append(errs, err)
		}
	}

	// AUD000: judged on every run, so that it resolves once every check runs.
	out := watchtower.Outcome{Summary: "Every check ran.", Figures: map[string]any{}}
	if len(failed) > 0 {
		out = watchtower.Outcome{Failing: true, Figures: failed,
			Summary: fmt.Sprintf("The integrity audit of the data received %s could not run %s (%s): their alerts are left as they were until they run again.",
				windowText(w), plural(len(failed), "check"), strings.Join(failedNames, ", "))}
		errs = append(errs, fmt.Errorf("audit: %s could not run: %s", plural(len(failed), "check"), strings.Join(failedNames, ", ")))
	}
	report.Failed, err = a.alerts.Judge(ctx, AuditFailed(), out, now)
	if err != nil {
		errs = append(errs, err)
	}

	status := "ok"
	if len(failed) > 0 {
		status = "failed"
	}
	runErr := errors.Join(errs...)
	if err := finishRun(ctx, a.db, report.RunID, status, runErr, time.Since(started)); err != nil {
		runErr = errors.Join(runErr, err)
	}
	return report, runErr
}

// AuditFailed is AUD000: a check's query failed (a timeout, a missing
// column, a bug), naming every such check; it resolves once every check runs
// again.
func AuditFailed() watchtower.Check {
	return watchtower.Check{Code: "AUD000", Name: "AUDIT_FAILED", Level: telegram.Alarm}
}

// siteRow is one row of a check's query.
type siteRow struct {
	siteID             int64
	denominator, count int64
	samples            []string
}

// measure runs one check's query within its time budget.
func (a *Auditor) measure(ctx context.Context, c Check, w Window, siteID int64) ([]siteRow, error) {
	ctx, cancel := context.WithTimeout(ctx, a.checkTimeout)
	defer cancel()
	var out []siteRow
	err := inCheckTx(ctx, a.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, c.SQL, c.Args(w, siteID)...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (siteRow, error) {
			var r siteRow
			err := row.Scan(&r.siteID, &r.denominator, &r.count, &r.samples)
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Code, c.Name, err)
	}
	return out, nil
}

// finding computes a row's ratio and verdict. The comparison is in
// integers scaled by 100 where it can be, so that exactly the threshold (10
// of 1,000 at 1 %) does not alarm.
func (a *Auditor) finding(r siteRow) Finding {
	f := Finding{Count: r.count, Denominator: r.denominator, Samples: r.samples}
	if r.denominator > 0 {
		f.RatioPercent = 100 * float64(r.count) / float64(r.denominator)
		f.Alarm = float64(r.count)*100 > a.threshold*float64(r.denominator)
	}
	return f
}

// judge turns one check's rows into per-site verdicts and sends what is due.
func (a *Auditor) judge(ctx context.Context, c Check, rows []siteRow, sites map[int64]watchtower.Site, w Window, now time.Time) (CheckReport, error) {
	cr := CheckReport{Code: c.Code, Name: c.Name, Outcome: "ok"}
	out := watchtower.Outcome{SitesOnly: true,
		SitesSummary: fmt.Sprintf("%s: more than %s%% of a site's %s (%s). What to do: docs/audit.md, %s.",
			capitalize(c.Anomaly), formatNumber(a.threshold), c.Over, windowText(w), c.Code)}
	findings := map[int64]Finding{}
	for _, r := range rows {
		site, ok := sites[r.siteID]
		if !ok || r.denominator == 0 {
			continue // a site created during the run, or nothing to judge
		}
		f := a.finding(r)
		findings[r.siteID] = f
		cr.SitesJudged++
		cr.Denominator += r.denominator
		cr.Anomalies += r.count
		if f.Alarm {
			cr.Alarms++
		}
		out.Sites = append(out.Sites, watchtower.SiteOutcome{Site: site, Failing: f.Alarm,
			Summary: siteSummary(c, f, a.threshold),
			Figures: map[string]any{"count": f.Count, "denominator": f.Denominator, "ratio_percent": round4(f.RatioPercent),
				"threshold_percent": a.threshold, "samples": f.Samples, "window_from": w.From, "window_to": w.To}})
	}
	judged, err := a.alerts.Judge(ctx, watchtower.Check{Code: c.Code, Name: c.Name, Level: telegram.Alarm}, out, now)
	alerts := map[int64]watchtower.Alert{}
	for _, s := range judged.Sites {
		alerts[s.ID] = s.Alert
	}
	// Every site with anomalies is reported (under the threshold too), and
	// so is any site whose alert did something.
	for _, s := range out.Sites {
		f := findings[s.Site.ID]
		alert, touched := alerts[s.Site.ID]
		if f.Count == 0 && !touched {
			continue
		}
		if !touched {
			alert = watchtower.AlertNone
		}
		cr.Sites = append(cr.Sites, SiteReport{Site: s.Site, Finding: f, Alert: alert})
	}
	if err != nil {
		cr.Error = err.Error()
	}
	return cr, err
}

// siteSummary is a site's line in the alarm: count, ratio and samples.
func siteSummary(c Check, f Finding, threshold float64) string {
	verdict := "above"
	if !f.Alarm {
		verdict = "at or under"
	}
	s := fmt.Sprintf("%d of %d (%s%%, %s the %s%% threshold)",
		f.Count, f.Denominator, formatPercent(f.RatioPercent), verdict, formatNumber(threshold))
	if len(f.Samples) > 0 {
		s += "; sample " + c.Samples + ": " + strings.Join(f.Samples, ", ")
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sitesSQL lists the sites a run judges: all, or the one asked for.
const sitesSQL = `
SELECT id, public_id, name FROM sites
WHERE $1::text = '' OR public_id = $1::text
ORDER BY id`

func (a *Auditor) sites(ctx context.Context) (map[int64]watchtower.Site, int64, error) {
	rows, err := a.db.Query(ctx, sitesSQL, a.site)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: list sites: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (watchtower.Site, error) {
		var s watchtower.Site
		err := row.Scan(&s.ID, &s.PublicID, &s.Name)
		return s, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("audit: list sites: %w", err)
	}
	if a.site != "" && len(list) == 0 {
		return nil, 0, fmt.Errorf("%w %q: no site has this public id (opsmantik site list)", ErrUnknownSite, a.site)
	}
	sites := make(map[int64]watchtower.Site, len(list))
	var siteID int64
	for _, s := range list {
		sites[s.ID] = s
		if a.site != "" {
			siteID = s.ID
		}
	}
	return sites, siteID, nil
}

func indexOf(checks []CheckReport, code string) int {
	for i, c := range checks {
		if c.Code == code {
			return i
		}
	}
	return -1
}

func windowText(w Window) string {
	return fmt.Sprintf("%s – %s", w.From.UTC().Format("2006-01-02 15:04"), w.To.UTC().Format("2006-01-02 15:04 UTC"))
}

// formatPercent writes a ratio with two decimals, or two significant
// digits below 0.01 so that a small ratio does not read as zero.
func formatPercent(p float64) string {
	if p != 0 && p < 0.01 {
		return fmt.Sprintf("%.2g", p)
	}
	return fmt.Sprintf("%.2f", p)
}

// formatNumber writes a threshold as configured: 1, 0.5, 2.25.
func formatNumber(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", f), "0"), ".")
}

func round4(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
