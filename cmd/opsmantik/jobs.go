package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-envconfig"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/telegram"
	"github.com/opsmantik/opsmantik/pkg/testnotification"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// scheduledJob is a job that `opsmantik run <name>` runs once and
// `opsmantik dev` runs every interval (serverless.yml gives the deployed
// function the same schedule).
type scheduledJob struct {
	name  string
	every time.Duration
	build func(d jobDeps) lambdahost.Job
}

// jobDeps is what jobs are built from.
type jobDeps struct {
	pool     *pgxpool.Pool
	sender   telegram.Sender
	alerting config.Alerting
	logger   *slog.Logger
	now      func() time.Time
	// publisher hands conversions to QStash (nil: not configured).
	publisher *conversions.Publisher
	sweep     config.ConversionSweep
}

// scheduledJobs lists every job; adding one is one line.
func scheduledJobs() []scheduledJob {
	return []scheduledJob{
		{"watchtower", 15 * time.Minute, func(d jobDeps) lambdahost.Job {
			return watchtower.New(d.pool, d.sender, d.alerting, watchtower.Options{Logger: d.logger, Now: d.now}).Job
		}},
		// Deployed, it runs in watchtower-cron before the checks.
		{"conversions-sweep", 15 * time.Minute, func(d jobDeps) lambdahost.Job {
			return conversions.NewSweeper(d.pool, d.publisher, conversions.SweepOptions{RepublishAfter: d.sweep.RepublishAfter, Logger: d.logger, Now: d.now}).Job
		}},
	}
}

func jobNames() string {
	var names []string
	for _, j := range scheduledJobs() {
		names = append(names, fmt.Sprintf("%s (every %s)", j.name, j.every))
	}
	return strings.Join(names, ", ")
}

func runJob(ctx context.Context, args []string) error {
	return runJobWith(ctx, envconfig.OsLookuper(), args)
}

// runJobWith runs one job with the configuration from l (tests pass a map).
// Without TELEGRAM_BOT_TOKEN, messages are printed to the log.
func runJobWith(ctx context.Context, l envconfig.Lookuper, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: opsmantik run <job>; jobs: %s", jobNames())
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
	logger := cfg.Log.Logger()
	// Open does not connect: with the database down, the watchtower still runs
	// and reports WT000.
	pool, err := database.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	sender, err := telegram.NewSender(cfg.Telegram, logger)
	if err != nil {
		return err
	}
	pub, err := conversions.PublisherFromConfig(pool, cfg.Publish, logger)
	if err != nil {
		return err
	}
	return job.build(jobDeps{pool: pool, sender: sender, alerting: cfg.Alerting, logger: logger, now: time.Now, publisher: pub, sweep: cfg.Sweep})(ctx)
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
	deps := jobDeps{pool: pool, sender: sender, alerting: cfg.Alerting, logger: logger, now: time.Now, publisher: pub, sweep: cfg.Sweep}
	for _, j := range scheduledJobs() {
		go runEvery(ctx, logger, j.name, j.every, j.build(deps), realTicker)
	}
	logger.Info("scheduled jobs running", "jobs", jobNames())
	return nil
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
