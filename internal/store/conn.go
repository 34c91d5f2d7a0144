package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Tracer sees every SQL statement the store sends, on its connection and on the lock's.
type Tracer interface {
	// TraceStatementStart is called before sql is sent; the context it returns is the one
	// TraceStatementEnd gets.
	TraceStatementStart(ctx context.Context, sql string) context.Context
	// TraceStatementEnd is called once the statement's result has been read, with its error.
	TraceStatementEnd(ctx context.Context, err error)
}

// conn returns the store's connection, connecting on first use and again after the last one was lost
// (the server restarted), and the function that hands it back. The store works on one connection at a
// time: the job's statements run one after another, and concurrent callers (the readiness probe beside a
// write) take turns.
func (s *Store) conn(ctx context.Context) (*pgconn.PgConn, func(), error) {
	s.connMu.Lock()
	if s.closed {
		s.connMu.Unlock()
		return nil, nil, errClosed
	}
	if s.work == nil || s.work.IsClosed() {
		c, err := pgconn.ConnectConfig(ctx, s.cfg.Copy())
		if err != nil {
			s.connMu.Unlock()
			return nil, nil, err
		}
		s.work = c
	}
	return s.work, s.connMu.Unlock, nil
}

// rows holds a statement's result: one slice per row, each column in PostgreSQL's text form, nil for NULL.
type rows [][][]byte

// exec runs one statement with text parameters (nil for NULL) and reads its whole result. Every
// parameter's type comes from the statement's casts, and every result column comes back as text, so
// no client-side type registry is needed.
func (s *Store) exec(ctx context.Context, c *pgconn.PgConn, sql string, params ...[]byte) (rows, pgconn.CommandTag, error) {
	if s.tracer != nil {
		ctx = s.tracer.TraceStatementStart(ctx, sql)
	}
	res := c.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	if s.tracer != nil {
		s.tracer.TraceStatementEnd(ctx, res.Err)
	}
	return res.Rows, res.CommandTag, res.Err
}

// query runs one statement outside a transaction on the store's connection and reads its rows.
func (s *Store) query(ctx context.Context, sql string, params ...[]byte) (rows, error) {
	c, done, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	res, _, err := s.exec(ctx, c, sql, params...)
	return res, err
}

// commit ends the transaction on c. PostgreSQL answers COMMIT in a failed transaction with ROLLBACK, not
// with an error; that is reported as one.
func (s *Store) commit(ctx context.Context, c *pgconn.PgConn) error {
	_, tag, err := s.exec(ctx, c, "COMMIT")
	if err == nil && tag.String() != "COMMIT" {
		return fmt.Errorf("the server rolled the transaction back (%s)", tag)
	}
	return err
}

// rollback runs on a fresh context: the caller's may be the one that was cancelled. Should it fail, the
// connection is closed, and the server rolls back when the connection goes.
func (s *Store) rollback(c *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := s.exec(ctx, c, "ROLLBACK"); err != nil {
		closeConn(c)
	}
}

func closeConn(c *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// textValue reads a column of a statement's result; each setter parses one text form and records the
// first error, which names the column.
type textValue struct {
	err error
}

func (v *textValue) fail(col string, raw []byte, err error) {
	if v.err == nil {
		v.err = fmt.Errorf("column %s: cannot read %q: %w", col, raw, err)
	}
}

func (v *textValue) str(col string, raw []byte, dst *string) {
	if raw == nil {
		v.fail(col, raw, errNull)
		return
	}
	*dst = string(raw)
}

func (v *textValue) optStr(raw []byte, dst **string) {
	if raw != nil {
		*dst = new(string(raw))
	}
}

func (v *textValue) boolean(col string, raw []byte, dst *bool) {
	switch string(raw) {
	case "t":
		*dst = true
	case "f":
		*dst = false
	default:
		v.fail(col, raw, errNotBool)
	}
}

// nullableBool reads a nullable boolean column: NULL reads as def, and col is added to nulls.
func (v *textValue) nullableBool(col string, raw []byte, dst *bool, def bool, nulls *[]string) {
	if raw == nil {
		*dst = def
		*nulls = append(*nulls, col)
		return
	}
	v.boolean(col, raw, dst)
}

func (v *textValue) optInt32(col string, raw []byte, dst **int32) {
	if raw == nil {
		return
	}
	n, err := strconv.ParseInt(string(raw), 10, 32)
	if err != nil {
		v.fail(col, raw, err)
		return
	}
	*dst = new(int32(n))
}

// optFloat64 reads float8's text form, which since PostgreSQL 12 is the shortest that reads back exactly.
func (v *textValue) optFloat64(col string, raw []byte, dst **float64) {
	if raw == nil {
		return
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		v.fail(col, raw, err)
		return
	}
	*dst = new(f)
}
