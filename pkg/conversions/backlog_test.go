package conversions_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/conversions"
)

// TestBacklogCountsWhatIsLateAndWhatNeedsAnOperator: unfinished rows older
// than the limit (exactly at it included), not those waiting for Google's
// retry time nor newer ones; config_error failures by code, not permanent ones.
func TestBacklogCountsWhatIsLateAndWhatNeedsAnOperator(t *testing.T) {
	t.Parallel()
	l := newLoop(t, loopOptions{})
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	add := func(click, status string, age time.Duration, code, class string, retryAfter *time.Time) {
		t.Helper()
		id := l.insertConversion(t, "google_ads", "gclid", click, now.Add(-age), true)
		_, err := l.pool.Exec(ctx, `UPDATE conversions SET status = $2, created_at = $3, last_error_code = nullif($4, ''),
			last_error_class = nullif($5, ''), retry_after = $6 WHERE id = $1`, id, status, now.Add(-age), code, class, retryAfter)
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := conversions.MeasureBacklog(ctx, l.pool, now, time.Hour)
	if err != nil || b.Failing() || b.Stuck() != 0 || b.ConfigErrors != 0 || b.Oldest != nil {
		t.Fatalf("empty: %+v %v", b, err)
	}
	later := now.Add(5 * time.Hour)
	add("a", "pending", 3*time.Hour, "", "", nil)
	add("b", "published", time.Hour, "INTERNAL_ERROR", "retry_later", nil) // exactly at the limit
	add("c", "published", time.Hour-time.Second, "", "", nil)              // just under
	add("d", "published", 2*time.Hour, "TOO_RECENT_EVENT", "retry_later", &later)
	add("e", "uploaded", 9*time.Hour, "", "", nil)
	add("f", "failed", 9*time.Hour, "EXPIRED_EVENT", "permanent", nil)
	add("g", "failed", 9*time.Hour, "NO_CONVERSION_ACTION_FOUND", "config_error", nil)
	add("h", "failed", time.Minute, "NO_CONVERSION_ACTION_FOUND", "config_error", nil)
	add("i", "failed", time.Minute, "invalid_grant", "config_error", nil)
	b, err = conversions.MeasureBacklog(ctx, l.pool, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if b.Pending != 1 || b.Published != 1 || b.Waiting != 1 || b.Oldest == nil || !b.Oldest.Equal(now.Add(-3*time.Hour)) || !b.Failing() {
		t.Errorf("stuck: %+v", b)
	}
	if !maps.Equal(b.StuckCodes, map[string]int64{"INTERNAL_ERROR": 1}) {
		t.Errorf("stuck codes %v", b.StuckCodes)
	}
	if b.ConfigErrors != 3 || !maps.Equal(b.ConfigErrorCodes, map[string]int64{"NO_CONVERSION_ACTION_FOUND": 2, "invalid_grant": 1}) {
		t.Errorf("config errors %d %v", b.ConfigErrors, b.ConfigErrorCodes)
	}
}
