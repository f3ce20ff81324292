package audit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// plannerSettings hold for each check's (read-only) transaction. PostgreSQL
// 15 costs a BRIN bitmap heap scan as if the window's rows were spread over
// the whole table (its Mackert–Lohman page estimate ignores the correlation
// BRIN relies on), so once the window is a few percent of events it plans a
// sequential scan of all of them; at 10,000,000 events a day's window was
// read in 0.8 s that way against 0.1 s through events_received_brin. The
// same inflated costs pass jit_above_cost, and compiling the query (in every
// parallel worker) then took 0.7 s of a 0.8 s check. Both settings end with
// the transaction.
const plannerSettings = `SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`

// inCheckTx runs fn in a read-only transaction with plannerSettings.
func inCheckTx(ctx context.Context, db *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, plannerSettings); err != nil {
			return fmt.Errorf("planner settings: %w", err)
		}
		return fn(tx)
	})
}

// Explain returns the plan of c's query for w and siteID as a run makes it
// (the same settings), one line per element. options go in EXPLAIN's
// parentheses ("ANALYZE, BUFFERS"; "" for none).
func Explain(ctx context.Context, db *pgxpool.Pool, c Check, w Window, siteID int64, options string) ([]string, error) {
	sql := "EXPLAIN " + c.SQL
	if options != "" {
		sql = "EXPLAIN (" + options + ") " + c.SQL
	}
	var plan []string
	err := inCheckTx(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, c.Args(w, siteID)...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("explain %s %s: %w", c.Code, c.Name, err)
	}
	return plan, nil
}
