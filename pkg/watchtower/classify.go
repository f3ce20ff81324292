package watchtower

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// connectionError tells WT000 (the database cannot be reached) from WT009
// (it answered, and the check failed): a failure to connect, a dial or
// network error, or a connection that went away mid-query is the former; an
// error the server reported (*pgconn.PgError: a missing column, a canceled
// statement), a timeout and anything else (a scan into the wrong type) is
// the latter. The exceptions among server errors are the ones that say the
// server itself is going away or not taking connections (SQLSTATE class 08,
// 57P01–57P03): those are an unreachable database too.
func connectionError(err error) bool {
	if err == nil {
		return false
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03"
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
