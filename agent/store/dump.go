package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// dumpTables is every table, in the order Dump writes them.
func dumpTables() []string {
	return []string{"schema_migrations", "orders", "steps", "readings", "findings", "reports", "outbox", "events", "acs_devices", "order_devices", "jobs", "job_results", "audit_log"}
}

// Dump writes every row of every table as text, one row per line:
//
//	orders: id=WO-1 json={...} state=fetched ...
//
// Text and blob values are written as they are stored (not escaped), so a
// test can search the output for a credential that must not be there.
func (s *Store) Dump(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, table := range dumpTables() {
		if err := s.dumpTable(ctx, bw, table); err != nil {
			return fmt.Errorf("store: dump table %s: %w", table, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: write dump: %w", err)
	}
	return nil
}

func (s *Store) dumpTable(ctx context.Context, w io.Writer, table string) error {
	rows, err := s.db.QueryContext(ctx, `SELECT * FROM `+table+` ORDER BY rowid`)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString(table + ":")
		for i, c := range cols {
			b.WriteString(" " + c + "=")
			switch v := vals[i].(type) {
			case nil:
				b.WriteString("NULL")
			case []byte:
				b.Write(v)
			case string:
				b.WriteString(v)
			case int64:
				b.WriteString(strconv.FormatInt(v, 10))
			case float64:
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			default:
				fmt.Fprint(&b, v)
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return rows.Err()
}
