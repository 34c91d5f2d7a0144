package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// OAuthIDNotNull reports whether users.oauth_id is still NOT NULL, i.e. whether MigrateOAuthID would
// alter it. A dry run uses it to report the migration without making it. It reads pg_catalog, not
// information_schema: the latter hides columns the role has no privilege on, which would turn "this
// role may not alter users" into "the column does not exist". While the column is NOT NULL, the role
// must own the table (directly or through membership), since only the owner may ALTER it.
func (s *Store) OAuthIDNotNull(ctx context.Context) (notNull bool, err error) {
	defer func() { err = s.red.Error(err) }()
	res, err := s.query(ctx, `SELECT a.attnotnull, current_user, pg_get_userbyid(c.relowner), pg_has_role(c.relowner, 'USAGE')
		FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE c.oid = to_regclass('public.users') AND a.attname = 'oauth_id' AND NOT a.attisdropped`)
	if err != nil {
		return false, fmt.Errorf("reading whether users.oauth_id is nullable: %w", err)
	}
	if len(res) == 0 {
		return false, errors.New("column public.users.oauth_id does not exist: is the LiteMaaS backend's schema set up?")
	}
	var (
		v           textValue
		ownerRole   bool
		user, owner string
	)
	v.boolean("attnotnull", res[0][0], &notNull)
	v.str("current_user", res[0][1], &user)
	v.str("owner", res[0][2], &owner)
	v.boolean("pg_has_role", res[0][3], &ownerRole)
	if v.err != nil {
		return false, fmt.Errorf("reading whether users.oauth_id is nullable: %w", v.err)
	}
	if notNull && !ownerRole {
		return true, fmt.Errorf("users.oauth_id is NOT NULL and only the owner of public.users (%s) may change that, "+
			"but the job connects as %s: give DATABASE_URL the backend's database role (the owner of its tables)", owner, user)
	}
	return notNull, nil
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
	return errors.Is(err, net.ErrClosed) || isClosedConn(err)
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
