package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-envconfig"

	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/stats"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/testnotification"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// scheduledJob is a job that `opsmantik run <name>` runs once and
// `opsmantik dev` runs every interval or daily (serverless.yml gives the
// deployed function the same schedule).
type scheduledJob struct {
	name  string
	every time.Duration // the default interval
	// interval, when set, reads the interval from the configuration.
	interval func(config.Alerting) time.Duration
	// daily, when set, runs the job once a day at this time instead of
	// every interval.
	daily *timeOfDay
	// flags, when set, declares the job's flags for `opsmantik run`; they
	// write into the deps the job is built from.
	flags func(fs *flag.FlagSet, d *jobDeps)
	build func(d jobDeps) lambdahost.Job
}

// period is how often `opsmantik dev` runs the job.
func (j scheduledJob) period(a config.Alerting) time.Duration {
	if j.interval != nil {
		return j.interval(a)
	}
	return j.every
}

// schedule describes when the job runs, for messages.
func (j scheduledJob) schedule() string {
	if j.daily != nil {
		return "daily at " + j.daily.String()
	}
	return fmt.Sprintf("every %s", j.every)
}

// jobDeps is what jobs are built from.
type jobDeps struct {
	pool     *pgxpool.Pool
	sender   telegram.Sender
	alerting config.Alerting
	auditing config.Auditing
	logger   *slog.Logger
	now      func() time.Time
	// trigger says who runs the job: "cli" or "dev" (recorded in
	// analytics_refreshes and audit_runs).
	trigger string
	// site restricts a job to one site's public id ("" for every site).
	site string
	// publisher hands conversions to QStash (nil: not configured).
	publisher *conversions.Publisher
	sweep     config.ConversionSweep
}

// auditAt is the audit's daily time, as audit-integrity's cron(15 3 * * ? *).
var auditAt = timeOfDay{hour: 3, minute: 15}

// scheduledJobs lists every job; adding one is one line.
func scheduledJobs() []scheduledJob {
	return []scheduledJob{
		{name: "watchtower", every: 15 * time.Minute,
			interval: func(a config.Alerting) time.Duration { return a.Interval }, // WATCHTOWER_INTERVAL
			build: func(d jobDeps) lambdahost.Job {
				return watchtower.New(d.pool, d.sender, d.alerting, watchtower.Options{Logger: d.logger, Now: d.now}).Job
			}},
		// pg_cron refreshes deployed databases; the local stack does it itself.
		{name: "refresh-analytics", every: time.Hour,
			build: func(d jobDeps) lambdahost.Job {
				return stats.RefreshJob(d.pool, d.trigger, d.logger)
			}},
		{name: "audit", every: 24 * time.Hour, daily: &auditAt,
			flags: func(fs *flag.FlagSet, d *jobDeps) {
				fs.DurationVar(&d.auditing.Window, "window", d.auditing.Window, "audit the data received in this window, ending now (AUDIT_WINDOW)")
				fs.StringVar(&d.site, "site", "", "audit only the site with this public id")
			},
			build: func(d jobDeps) lambdahost.Job {
				return audit.New(d.pool, d.sender, d.auditing, audit.Options{Logger: d.logger, Now: d.now, Trigger: d.trigger, Site: d.site}).Job
			}},
		// Deployed, it runs in watchtower-cron before the checks.
		{name: "conversions-sweep", every: 15 * time.Minute,
			build: func(d jobDeps) lambdahost.Job {
				return conversions.NewSweeper(d.pool, d.publisher, conversions.SweepOptions{RepublishAfter: d.sweep.RepublishAfter, Logger: d.logger, Now: d.now}).Job
			}},
	}
}

func jobNames() string {
	var names []string
	for _, j := range scheduledJobs() {
		names = append(names, fmt.Sprintf("%s (%s)", j.name, j.schedule()))
	}
	return strings.Join(names, ", ")
}

func runJob(ctx context.Context, args []string) error {
	return runJobWith(ctx, envconfig.OsLookuper(), args)
}

// runJobWith runs one job with the configuration from l (tests pass a map).
// Without TELEGRAM_BOT_TOKEN, messages are printed to the log.
func runJobWith(ctx context.Context, l envconfig.Lookuper, args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: opsmantik run <job> [flags]; jobs: %s", jobNames())
	}
	var job *scheduledJob
	for _, j := range scheduledJobs() {
		if j.name == args[0] {
			job = &j
		}
	}
	if job == nil {
		return fmt.Errorf("unknown job %q; jobs: %s", args[0], jobNames())
	}
	var cfg config.Jobs
	if err := config.LoadFrom(ctx, l, &cfg); err != nil {
		return err
	}
	deps := jobDeps{alerting: cfg.Alerting, auditing: cfg.Auditing, now: time.Now, trigger: audit.TriggerCLI}
	fs := flag.NewFlagSet("run "+job.name, flag.ContinueOnError)
	if job.flags != nil {
		job.flags(fs, &deps)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run %s: unexpected argument %q", job.name, fs.Arg(0))
	}
	// The flags obey the limits of the variables they stand for.
	if err := deps.auditing.Validate(); err != nil {
		return fmt.Errorf("run %s: --window: %w", job.name, err)
	}
	deps.logger = cfg.Log.Logger()
	// Open does not connect: with the database down, the watchtower still runs
	// and reports WT000.
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	deps.pool = pool
	if deps.sender, err = telegram.NewSender(cfg.Telegram, deps.logger); err != nil {
		return err
	}
	pub, err := conversions.PublisherFromConfig(pool, cfg.Publish, deps.logger)
	if err != nil {
		return err
	}
	deps.publisher, deps.sweep = pub, cfg.Sweep
	return job.build(deps)(ctx)
}

// startAlerting is the alerting part of `opsmantik dev`: it mounts
// /api/test-notification and, unless OPSMANTIK_CRON=false, runs the
// scheduled jobs on their intervals until ctx ends.
func startAlerting(ctx context.Context, cfg *config.Dev, pool *pgxpool.Pool, logger *slog.Logger, mux *http.ServeMux, pub *conversions.Publisher) error {
	sender, err := telegram.NewSender(cfg.Telegram, logger)
	if err != nil {
		return err
	}
	if cfg.CronSecret == "" {
		logger.Info("CRON_SECRET is not set: /api/test-notification answers 503")
	}
	mux.Handle("/api/test-notification", testnotification.New(cfg.CronSecret, sender, logger))
	if !cfg.Cron.Enabled {
		logger.Info("OPSMANTIK_CRON=false: scheduled jobs do not run; use `opsmantik run <job>`")
		return nil
	}
	deps := jobDeps{pool: pool, sender: sender, alerting: cfg.Alerting, auditing: cfg.Auditing, logger: logger, now: time.Now, trigger: audit.TriggerDev, publisher: pub, sweep: cfg.Sweep}
	for _, j := range scheduledJobs() {
		if j.daily != nil {
			go runDaily(ctx, logger, j.name, *j.daily, j.build(deps), time.Now, time.After)
			continue
		}
		go runEvery(ctx, logger, j.name, j.period(cfg.Alerting), j.build(deps), realTicker)
	}
	logger.Info("scheduled jobs running", "jobs", jobNames())
	return nil
}

// timeOfDay is a time of the UTC day, as an EventBridge cron() names it.
type timeOfDay struct{ hour, minute int }

func (t timeOfDay) String() string { return fmt.Sprintf("%02d:%02d UTC", t.hour, t.minute) }

// next is the first time of day t strictly after now.
func (t timeOfDay) next(now time.Time) time.Time {
	now = now.UTC()
	at := time.Date(now.Year(), now.Month(), now.Day(), t.hour, t.minute, 0, 0, time.UTC)
	if !at.After(now) {
		at = at.AddDate(0, 0, 1)
	}
	return at
}

// dailyRunTimeout bounds one run of a daily job.
const dailyRunTimeout = time.Hour

// runDaily runs job every day at t (not at start: `opsmantik run <job>` is
// the way to run it now) until ctx ends. Runs never overlap.
func runDaily(ctx context.Context, logger *slog.Logger, name string, t timeOfDay, job lambdahost.Job,
	now func() time.Time, after func(time.Duration) <-chan time.Time,
) {
	for {
		current := now()
		select {
		case <-ctx.Done():
			return
		case <-after(t.next(current).Sub(current)):
		}
		runCtx, cancel := context.WithTimeout(ctx, dailyRunTimeout)
		if err := job(runCtx); err != nil && ctx.Err() == nil {
			logger.Error("scheduled job failed", "job", name, "err", err.Error())
		}
		cancel()
	}
}

// runEvery runs job at once and then on every tick until ctx ends. Runs
// never overlap; each is bounded by the interval.
func runEvery(ctx context.Context, logger *slog.Logger, name string, every time.Duration, job lambdahost.Job,
	newTicker func(time.Duration) (<-chan time.Time, func()),
) {
	ticks, stop := newTicker(every)
	defer stop()
	for {
		runCtx, cancel := context.WithTimeout(ctx, every)
		if err := job(runCtx); err != nil && ctx.Err() == nil {
			logger.Error("scheduled job failed", "job", name, "err", err.Error())
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
