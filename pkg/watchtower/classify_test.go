package watchtower

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestConnectionErrorTellsWT000FromWT009(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A real failed connection attempt: nothing listens on port 1.
	_, connectErr := pgconn.Connect(ctx, "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2")
	var ce *pgconn.ConnectError
	if !errors.As(connectErr, &ce) {
		t.Fatalf("connecting to a closed port gave %T %v, want a *pgconn.ConnectError", connectErr, connectErr)
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"failed to connect", fmt.Errorf("count sessions: %w", connectErr), true},
		{"dial error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"connection lost mid-query", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"connection closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{"missing column", &pgconn.PgError{Severity: "ERROR", Code: "42703", Message: `column "x" does not exist`}, false},
		{"missing table", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "42P01"}), false},
		{"statement canceled", &pgconn.PgError{Code: "57014"}, false},
		{"server shutting down", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		{"server starting up", &pgconn.PgError{Severity: "FATAL", Code: "57P03"}, true},
		{"connection exception class", &pgconn.PgError{Code: "08006"}, true},
		{"timeout", fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{"canceled", context.Canceled, false},
		{"scan into the wrong type", errors.New("can't scan into dest[0]: cannot scan text into *int64"), false},
	} {
		if got := connectionError(tc.err); got != tc.want {
			t.Errorf("%s (%v): connection error %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
