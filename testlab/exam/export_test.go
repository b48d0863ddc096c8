package exam

import "time"

// SheetForTest scores a sheet of the given items and times.
func SheetForTest(items []Item, elapsed, limit time.Duration) *Sheet {
	s := &Sheet{Items: items, Elapsed: Duration(elapsed), Limit: Duration(limit)}
	s.finish()
	return s
}
