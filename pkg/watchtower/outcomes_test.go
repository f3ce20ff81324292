package watchtower_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

// alertRow is the whole alert_state row of code, as JSON, so that a test can
// tell whether a run touched it at all.
func alertRow(t *testing.T, f *fixture, code string) string {
	t.Helper()
	var row string
	err := f.pool.QueryRow(context.Background(), `SELECT row_to_json(a)::text FROM alert_state a WHERE code = $1`, code).Scan(&row)
	if err != nil {
		t.Fatalf("alert_state %s: %v", code, err)
	}
	return row
}

func TestIngestErrorRateBelowTheMinimumSampleIsNotJudged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	check := watchtower.Checks(defaults(t))[2]
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		rows    []counters
		clients []clientFailures
		skipped bool
	}{
		{"no traffic", nil, nil, true},
		// 10 requests and 9 counted client failures (a's 10 are the largest, left out).
		{"19 attempts, all failing", []counters{{ago: time.Minute, requests: 10, server: 10}},
			[]clientFailures{{time.Minute, "a", 10}, {time.Minute, "b", 5}, {time.Minute, "c", 4}}, true},
		{"exactly the minimum sample with client failures", []counters{{ago: time.Minute, requests: 10, server: 1}},
			[]clientFailures{{time.Minute, "a", 10}, {time.Minute, "b", 5}, {time.Minute, "c", 5}}, false},
		// One client alone is left out entirely: it does not make the sample either.
		{"one client's failures do not make the sample", []counters{{ago: time.Minute, requests: 10}},
			[]clientFailures{{time.Minute, "a", 10}, {2 * time.Minute, "a", 10}}, true},
		{"exactly the minimum sample", []counters{{ago: time.Minute, requests: 20, server: 2}}, nil, false},
		{"enough attempts, none failing", []counters{{ago: time.Minute, requests: 100}}, nil, false},
	} {
		tx, err := f.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insertCounters(t, tx, t0, tc.rows...)
		insertClientFailures(t, tx, t0, tc.clients...)
		out, err := check.Measure(ctx, tx, t0)
		_ = tx.Rollback(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if out.Skipped != tc.skipped || (out.Skipped && out.Failing) {
			t.Errorf("%s: skipped %v failing %v, figures %v; want skipped %v", tc.name, out.Skipped, out.Failing, out.Figures, tc.skipped)
		}
	}
}

// A quiet hour measures nothing: a firing WT003 must neither resolve nor
// repeat, and its alert state must stay exactly as it was.
func TestTooLittleDataNeitherResolvesNorRepeatsAFiringAlert(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.w = f.watchtower(t, f.pool, watchtower.Checks(defaults(t))[2])

	// 10 % errors over 40 attempts: WT003 fires.
	insertCounters(t, f.pool, t0, counters{ago: time.Minute, requests: 40, server: 4})
	r := f.run(t)
	wantTexts(t, "high error rate", f.texts(0), "🚨 [CRITICAL] WT003 INGEST_ERROR_RATE\n")
	if got := alertOf(r, "WT003"); got.Outcome != "fail" || got.Alert != watchtower.AlertFired {
		t.Fatalf("high error rate: WT003 %+v", got)
	}
	before := alertRow(t, f, "WT003")

	// The bad minute leaves the window; only 5 attempts in the last hour,
	// then still too few past the repeat interval.
	for _, at := range []time.Duration{time.Hour + time.Minute, 7 * time.Hour} {
		now := t0.Add(at)
		f.clock.Set(now)
		insertCounters(t, f.pool, now, counters{ago: time.Minute, requests: 5})
		f.logs.Reset()
		if err := f.w.Job(context.Background()); err != nil {
			t.Fatalf("quiet run at %s: %v", at, err)
		}
		wantTexts(t, "quiet hour at "+at.String(), f.texts(1))
		if after := alertRow(t, f, "WT003"); after != before {
			t.Errorf("quiet run at %s changed the alert state:\n%s\nwas\n%s", at, after, before)
		}
		var line struct {
			Checks []watchtower.CheckReport `json:"checks"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(f.logs.String())), &line); err != nil {
			t.Fatalf("log %q: %v", f.logs.String(), err)
		}
		var wt003 watchtower.CheckReport
		for _, c := range line.Checks {
			if c.Code == "WT003" {
				wt003 = c
			}
		}
		if wt003.Outcome != "skipped" || wt003.Alert != watchtower.AlertNone || wt003.Figures["attempts"] != 5.0 || wt003.Figures["min_sample"] != 20.0 {
			t.Errorf("quiet run at %s: WT003 in the log %+v, want skipped with its figures", at, wt003)
		}
	}

	// Enough good data: it resolves.
	now := t0.Add(8 * time.Hour)
	f.clock.Set(now)
	insertCounters(t, f.pool, now, counters{ago: time.Minute, requests: 100})
	r = f.run(t)
	wantTexts(t, "enough good data", f.texts(1), "✅ [RESOLVED] WT003 INGEST_ERROR_RATE\nPassing again after 8h (failing since 2026-11-20 12:00 UTC).")
	if got := alertOf(r, "WT003"); got.Outcome != "pass" || got.Alert != watchtower.AlertResolved {
		t.Errorf("enough good data: WT003 %+v", got)
	}
}

// An alert_state that cannot be written is not an unreachable database: the
// run returns an error naming the alert, sends no WT000, and the next run
// retries.
func TestAlertStateErrorsAreNotReportedAsDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, trigger, cause string
		sent                 []string // WT001's alarm goes out when only the commit fails
	}{
		{"update fails", `
			CREATE TRIGGER alert_state_broken BEFORE UPDATE ON alert_state
			FOR EACH ROW WHEN (NEW.code = 'WT001') EXECUTE FUNCTION alert_state_broken()`,
			"update alert state", []string{"🚨 [CRITICAL] WT002 GCLID_LOSS"}},
		{"commit fails", `
			CREATE CONSTRAINT TRIGGER alert_state_broken AFTER UPDATE ON alert_state
			DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW WHEN (NEW.code = 'WT001') EXECUTE FUNCTION alert_state_broken()`,
			"commit alert state", []string{"🚨 [CRITICAL] WT001 TRAFFIC_LOSS", "🚨 [CRITICAL] WT002 GCLID_LOSS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			_, err := f.pool.Exec(ctx, `
				CREATE FUNCTION alert_state_broken() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'alert_state is broken for %', NEW.code; END $$`)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.pool.Exec(ctx, tc.trigger); err != nil {
				t.Fatal(err)
			}

			r, err := f.w.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "WT001 TRAFFIC_LOSS") ||
				!strings.Contains(err.Error(), tc.cause) || !strings.Contains(err.Error(), "alert_state is broken for WT001") {
				t.Fatalf("run error %v, want one naming WT001 and the cause", err)
			}
			wantTexts(t, tc.name, f.texts(0), tc.sent...)
			for _, m := range f.texts(0) {
				if strings.Contains(m, "WT000") {
					t.Errorf("a misleading WT000 was sent: %q", m)
				}
			}
			if got := alertOf(r, "WT001"); got.Alert != watchtower.AlertError || !strings.Contains(got.Error, "alert_state is broken") {
				t.Errorf("WT001 in the report: %+v", got)
			}
			if got := alertOf(r, "WT000"); got.Outcome != "pass" || got.Alert != watchtower.AlertNone {
				t.Errorf("WT000 in the report: %+v", got)
			}
			var firing bool
			if err := f.pool.QueryRow(ctx, `SELECT firing FROM alert_state WHERE code = 'WT001'`).Scan(&firing); err != nil || firing {
				t.Fatalf("WT001 state firing=%v (%v): a failed update must not advance it", firing, err)
			}

			// Repaired: the next run retries WT001.
			if _, err := f.pool.Exec(ctx, `DROP TRIGGER alert_state_broken ON alert_state`); err != nil {
				t.Fatal(err)
			}
			f.clock.Set(t0.Add(15 * time.Minute))
			r = f.run(t)
			wantTexts(t, "repaired", f.texts(len(tc.sent)), "🚨 [CRITICAL] WT001 TRAFFIC_LOSS")
			if alertOf(r, "WT001").Alert != watchtower.AlertFired {
				t.Errorf("repaired: %+v", r.Checks)
			}
		})
	}
}
