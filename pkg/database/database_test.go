package database_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/opsmantik/opsmantik/pkg/database"
	"github.com/opsmantik/opsmantik/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestMigrationsApplyToAnEmptyDatabaseAndAgainAsANoOp(t *testing.T) {
	ctx := context.Background()
	name := dbtest.Name(t) // a migrated clone; make an empty one beside it
	admin, err := pgxpool.New(ctx, dbtest.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close) // runs after the drop below (cleanups run last-in, first-out)
	empty := name + "_empty"
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+empty); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+empty+" WITH (FORCE)") })

	pool, err := database.Open(ctx, dbtest.URL(empty), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tables := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if tables() != 0 {
		t.Fatal("the new database is not empty")
	}
	if err := database.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	first := tables()
	var version int
	if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := database.Migrate(ctx, pool); err != nil {
		t.Fatalf("second run: %v", err)
	}
	var again int
	if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&again); err != nil {
		t.Fatal(err)
	}
	if first < 5 || tables() != first || again != version {
		t.Fatalf("tables %d then %d, version %d then %d", first, tables(), version, again)
	}
}

func TestEnsureDatabaseCreatesOnce(t *testing.T) {
	ctx := context.Background()
	url := dbtest.URL(dbtest.Name(t) + "_made")
	for range 2 {
		if err := database.EnsureDatabase(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := database.Open(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	admin, err := pgxpool.New(ctx, dbtest.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name, _, _ := database.AdminURL(url)
	if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
}
