package stats

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/database"
)

// CronJobName is the pg_cron job that refreshes the view.
const CronJobName = "opsmantik-refresh-analytics"

// CronSchedule is what ScheduleRefresh did.
type CronSchedule struct {
	// Available: pg_cron is loaded on the server (shared_preload_libraries)
	// and can be installed. Without it nothing is scheduled.
	Available bool
	// Database is the database the job refreshes; CronDatabase the one
	// pg_cron keeps its jobs in (cron.database_name).
	Database, CronDatabase string
	Schedule               string
	JobID                  int64
	Active                 bool
}

// String is the one line `opsmantik migrate` prints.
func (c CronSchedule) String() string {
	if !c.Available {
		return "pg_cron is not available on this server, so the hourly refresh of the daily analytics is not scheduled " +
			"(the watchtower's WT004 refreshes a stale view itself): load it with shared_preload_libraries = 'pg_cron' " +
			"and cron.database_name (RDS: the DB parameter group; Supabase: Database > Extensions > pg_cron), " +
			"restart PostgreSQL and run `opsmantik migrate` again"
	}
	where := ""
	if c.CronDatabase != c.Database {
		where = fmt.Sprintf(" (pg_cron's database is %s)", c.CronDatabase)
	}
	state := ""
	if !c.Active {
		state = "; the job is inactive: activate it with cron.alter_job"
	}
	return fmt.Sprintf("pg_cron: job %s (id %d) refreshes the daily analytics of database %s on schedule %q%s%s",
		CronJobName, c.JobID, c.Database, c.Schedule, where, state)
}

// ScheduleRefresh schedules the refresh with pg_cron when the server has it:
// in the app database itself when that is cron.database_name, otherwise with
// cron.schedule_in_database from pg_cron's database (same server, same
// credentials: databaseURL with the database name changed). Running it again
// updates the schedule; it never takes over a job of the same name that
// refreshes another database.
func ScheduleRefresh(ctx context.Context, pool *pgxpool.Pool, databaseURL, schedule string) (CronSchedule, error) {
	c := CronSchedule{Schedule: schedule}
	var cronDB *string
	var user, schema string
	var available bool
	err := pool.QueryRow(ctx, `
		SELECT current_database(), current_user, current_setting('cron.database_name', true),
		       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron'),
		       (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		        WHERE p.oid = 'refresh_daily_analytics(text)'::regprocedure)`).Scan(&c.Database, &user, &cronDB, &available, &schema)
	if err != nil {
		return c, fmt.Errorf("pg_cron: look for it: %w", err)
	}
	if cronDB == nil || *cronDB == "" || !available {
		return c, nil
	}
	c.Available, c.CronDatabase = true, *cronDB
	command := fmt.Sprintf("SELECT %s.refresh_daily_analytics('%s')", pgx.Identifier{schema}.Sanitize(), TriggerPgCron)

	// pg_cron's objects live in cron.database_name only.
	var conn *pgx.Conn
	if c.CronDatabase == c.Database {
		pc, err := pool.Acquire(ctx)
		if err != nil {
			return c, fmt.Errorf("pg_cron: %w", err)
		}
		defer pc.Release()
		conn = pc.Conn()
	} else {
		url, err := database.WithDatabase(databaseURL, c.CronDatabase)
		if err != nil {
			return c, err
		}
		if conn, err = pgx.Connect(ctx, url); err != nil {
			return c, fmt.Errorf("pg_cron: connect to its database %s: %w", c.CronDatabase, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
	}
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_cron`); err != nil {
		return c, fmt.Errorf("pg_cron: create the extension in database %s: %w", c.CronDatabase, err)
	}
	var otherDB string
	err = conn.QueryRow(ctx, `SELECT database FROM cron.job WHERE jobname = $1 AND username = $2`, CronJobName, user).Scan(&otherDB)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return c, fmt.Errorf("pg_cron: read cron.job: %w", err)
	case otherDB != c.Database:
		return c, fmt.Errorf("pg_cron: job %s of user %s already refreshes database %s; to move it here run SELECT cron.unschedule('%s') in database %s, then migrate again",
			CronJobName, user, otherDB, CronJobName, c.CronDatabase)
	}
	if c.CronDatabase == c.Database {
		err = conn.QueryRow(ctx, `SELECT cron.schedule($1, $2, $3)`, CronJobName, schedule, command).Scan(&c.JobID)
	} else {
		err = conn.QueryRow(ctx, `SELECT cron.schedule_in_database($1, $2, $3, $4, $5, true)`,
			CronJobName, schedule, command, c.Database, user).Scan(&c.JobID)
	}
	if err != nil {
		return c, fmt.Errorf("pg_cron: schedule %s with ANALYTICS_REFRESH_SCHEDULE %q: %w", CronJobName, schedule, err)
	}
	if err := conn.QueryRow(ctx, `SELECT active FROM cron.job WHERE jobid = $1`, c.JobID).Scan(&c.Active); err != nil {
		return c, fmt.Errorf("pg_cron: read job %d: %w", c.JobID, err)
	}
	return c, nil
}
