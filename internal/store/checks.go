package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// OAuthIDNotNull reports whether users.oauth_id is still NOT NULL, i.e. whether MigrateOAuthID would
// alter it. A dry run uses it to report the migration without making it.
func (s *Store) OAuthIDNotNull(ctx context.Context) (notNull bool, err error) {
	defer func() { err = redactError(err, s.password) }()
	var nullable string
	err = s.pool.QueryRow(ctx, `SELECT is_nullable FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'oauth_id'`).Scan(&nullable)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, errors.New("column public.users.oauth_id does not exist: is the LiteMaaS backend's schema set up?")
	}
	if err != nil {
		return false, fmt.Errorf("reading whether users.oauth_id is nullable: %w", err)
	}
	return nullable == "NO", nil
}

// IsTransient reports whether a database error may go away by itself: the server restarting or
// shutting down, a lost or refused connection. Errors in the data or the SQL are not.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"57", // operator intervention: admin shutdown, crash shutdown, cannot connect now
			"53", // insufficient resources (too many connections)
			"40": // serialization failure, deadlock
			return true
		}
		return pgErr.Code == "55P03" // lock_not_available: the oauth_id ALTER's lock_timeout
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, net.ErrClosed) || isClosedConn(err)
}

func isClosedConn(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.Error() {
		case "conn closed", "unexpected EOF", "EOF":
			return true
		}
	}
	return false
}
