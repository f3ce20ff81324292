package ingest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// namedQuery is SQL written with @name parameters, rewritten to $n once at
// start-up: pgx.NamedArgs would parse the statement text again on every
// batch (a measurable share of the ingest path's CPU).
type namedQuery struct {
	sql   string   // with $1, $2, …
	names []string // the parameter of each $n
}

// compileNamed rewrites sql with pgx's own named-argument rules, so the
// statements read exactly as pgx.NamedArgs would take them.
func compileNamed(sql string) namedQuery {
	names := map[string]any{}
	probe := pgx.NamedArgs{}
	// Every name maps to itself: the rewritten arguments are then the names
	// in $n order.
	for _, n := range namedParams(sql) {
		probe[n] = n
		names[n] = n
	}
	newSQL, args, err := probe.RewriteQuery(context.Background(), nil, sql, nil)
	if err != nil {
		panic(fmt.Sprintf("compile named query: %v", err))
	}
	q := namedQuery{sql: newSQL, names: make([]string, len(args))}
	for i, a := range args {
		q.names[i] = a.(string)
	}
	return q
}

// args lays out values in the query's $n order; a name without a value is
// a programming error.
func (q namedQuery) args(values map[string]any) []any {
	out := make([]any, len(q.names))
	for i, n := range q.names {
		v, ok := values[n]
		if !ok {
			panic("named query: no value for @" + n)
		}
		out[i] = v
	}
	return out
}

// namedParams lists the @names in sql (a superset is fine: unused names are
// dropped by the rewrite).
func namedParams(sql string) []string {
	var out []string
	for i := 0; i < len(sql); i++ {
		if sql[i] != '@' {
			continue
		}
		j := i + 1
		for j < len(sql) && (sql[j] == '_' || sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z' || sql[j] >= '0' && sql[j] <= '9') {
			j++
		}
		if j > i+1 {
			out = append(out, sql[i+1:j])
		}
		i = j - 1
	}
	return out
}
