package watchtower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opsmantik/opsmantik/pkg/telegram"
)

// How a run decides who sends: alert_state has one row per (check, site),
// site_id NULL being the whole installation. The conditional UPDATE below
// takes the row's lock and matches only when a message is due. The
// transaction stays open while Telegram is called; a second run's UPDATE
// waits for it, then finds the row already advanced and matches nothing. If
// Telegram fails, the transaction rolls back and the row is as it was, so
// the next run retries. (If the commit itself fails after Telegram
// accepted, a later run repeats the message: at least once, never lost.)
//
// The sites of one check that are due go out in one message (Telegram's
// rate limits): their rows are claimed in one transaction, in ascending
// site id, so that concurrent runs lock them in the same order and cannot
// deadlock.

const ensureAlertRow = `
INSERT INTO alert_state (code, name) VALUES ($1, $2)
ON CONFLICT (code, site_id) DO NOTHING`

const ensureSiteAlertRows = `
INSERT INTO alert_state (code, site_id, name)
SELECT $1, site_id, $2 FROM unnest($3::bigint[]) AS site_id
ON CONFLICT (code, site_id) DO NOTHING`

// $3 = now, $4 = now − repeat interval, $5 figures, $6 site. SET
// expressions see the old row.
const claimFiring = `
UPDATE alert_state SET
    name             = $2,
    firing           = true,
    failing_since    = CASE WHEN firing THEN failing_since ELSE $3 END,
    notifications    = CASE WHEN firing THEN notifications + 1 ELSE 1 END,
    resolved_at      = CASE WHEN firing THEN resolved_at END,
    last_notified_at = $3,
    figures          = $5::jsonb,
    updated_at       = now()
WHERE code = $1 AND (NOT firing OR last_notified_at <= $4) AND `

const (
	claimFiringInstallation = claimFiring + `site_id IS NULL RETURNING failing_since, notifications`
	claimFiringSite         = claimFiring + `site_id = $6 RETURNING failing_since, notifications`
)

// $2 = now, $3 figures, $4 site.
const claimResolved = `
UPDATE alert_state SET
    firing      = false,
    resolved_at = $2,
    figures     = $3::jsonb,
    updated_at  = now()
WHERE code = $1 AND firing AND `

const (
	claimResolvedInstallation = claimResolved + `site_id IS NULL RETURNING failing_since, notifications`
	claimResolvedSite         = claimResolved + `site_id = $4 RETURNING failing_since, notifications`
)

// firingSites lists the sites whose alert for a check is firing: only they
// can resolve, so a passing site costs nothing.
const firingSites = `
SELECT site_id FROM alert_state WHERE code = $1 AND site_id IS NOT NULL AND firing`

// alertItem is one alert_state row a transition touches.
type alertItem struct {
	site    *SiteOutcome // nil: the installation
	figures map[string]any
	// Set by the claim.
	claimed bool
	since   time.Time
	n       int
	alert   Alert
}

// fire notifies a failing check when that is due: it starts failing, or the
// last message is at least the repeat interval old.
func (w *Watchtower) fire(ctx context.Context, c Check, out Outcome, now time.Time) (Alert, error) {
	if _, err := w.db.Exec(ctx, ensureAlertRow, c.Code, c.Name); err != nil {
		return AlertError, fmt.Errorf("create alert state: %w", err)
	}
	item := &alertItem{figures: out.Figures}
	err := w.transition(ctx, c, true, []*alertItem{item}, now, func([]*alertItem) (string, telegram.Level) {
		return firingMessage(c, out, item.since, item.n, now, w.repeat), c.Level
	})
	return item.alert, err
}

// resolve sends RESOLVED for a passing check that was firing.
func (w *Watchtower) resolve(ctx context.Context, c Check, out Outcome, now time.Time) (Alert, error) {
	item := &alertItem{figures: out.Figures}
	err := w.transition(ctx, c, false, []*alertItem{item}, now, func([]*alertItem) (string, telegram.Level) {
		return resolvedMessage(c, out, item.since, now), telegram.Resolved
	})
	return item.alert, err
}

// judgeSites fires, repeats and resolves the per-site alerts of one check:
// at most one alarm message (the sites that start failing or are due a
// reminder) and one RESOLVED message (the sites passing again) per run.
func (w *Watchtower) judgeSites(ctx context.Context, c Check, out Outcome, now time.Time) ([]SiteReport, []error) {
	sites := append([]SiteOutcome(nil), out.Sites...)
	sort.Slice(sites, func(i, j int) bool { return sites[i].Site.ID < sites[j].Site.ID })
	var failing, passing []*alertItem
	var failingIDs []int64
	for i := range sites {
		s := &sites[i]
		if s.Failing {
			failing = append(failing, &alertItem{site: s, figures: s.Figures})
			failingIDs = append(failingIDs, s.Site.ID)
		} else {
			passing = append(passing, &alertItem{site: s, figures: s.Figures, alert: AlertNone})
		}
	}

	var errs []error
	if len(failing) > 0 {
		err := func() error {
			if _, err := w.db.Exec(ctx, ensureSiteAlertRows, c.Code, c.Name, failingIDs); err != nil {
				for _, it := range failing {
					it.alert = AlertError
				}
				return fmt.Errorf("create alert state: %w", err)
			}
			return w.transition(ctx, c, true, failing, now, func(claimed []*alertItem) (string, telegram.Level) {
				return sitesFiringMessage(c, out.SitesSummary, claimed, now, w.repeat), c.Level
			})
		}()
		if err != nil {
			errs = append(errs, err)
		}
	}

	if len(passing) > 0 {
		firing, err := w.firingSites(ctx, c.Code)
		if err != nil {
			for _, it := range passing {
				it.alert = AlertError
			}
			errs = append(errs, err)
		} else {
			var due []*alertItem
			for _, it := range passing {
				if firing[it.site.Site.ID] {
					due = append(due, it)
				}
			}
			if len(due) > 0 {
				if err := w.transition(ctx, c, false, due, now, func(claimed []*alertItem) (string, telegram.Level) {
					return sitesResolvedMessage(c, claimed, now), telegram.Resolved
				}); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}

	// The report lists the sites that fail or that something happened to;
	// the passing rest would only make the log line long.
	var reports []SiteReport
	for _, it := range append(failing, passing...) {
		if !it.site.Failing && it.alert == AlertNone {
			continue
		}
		r := SiteReport{Site: it.site.Site, Outcome: "pass", Alert: it.alert}
		if it.site.Failing {
			r.Outcome, r.Figures = "fail", it.site.Figures
		}
		reports = append(reports, r)
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Site.ID < reports[j].Site.ID })
	return reports, errs
}

func (w *Watchtower) firingSites(ctx context.Context, code string) (map[int64]bool, error) {
	rows, err := w.db.Query(ctx, firingSites, code)
	if err != nil {
		return nil, fmt.Errorf("read firing sites: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read firing sites: %w", err)
	}
	firing := make(map[int64]bool, len(ids))
	for _, id := range ids {
		firing[id] = true
	}
	return firing, nil
}

// transition claims items in one transaction (firing or resolving) and
// commits it only once the message about the claimed ones is sent. Items
// whose claim matches nothing are not due (firing) or have nothing to
// resolve; when none matches, nothing is sent. Every item's alert is set.
func (w *Watchtower) transition(ctx context.Context, c Check, firing bool, items []*alertItem, now time.Time,
	message func(claimed []*alertItem) (string, telegram.Level),
) error {
	setAll := func(a Alert) {
		for _, it := range items {
			it.alert = a
		}
	}
	setAll(AlertError)
	tx, err := w.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var claimed []*alertItem
	for _, it := range items {
		figures, err := json.Marshal(it.figures)
		if err != nil {
			return fmt.Errorf("encode figures: %w", err)
		}
		var sql string
		args := []any{c.Code}
		switch {
		case firing && it.site == nil:
			sql, args = claimFiringInstallation, append(args, c.Name, now, now.Add(w.repeatEarly-w.repeat), string(figures))
		case firing:
			sql, args = claimFiringSite, append(args, c.Name, now, now.Add(w.repeatEarly-w.repeat), string(figures), it.site.Site.ID)
		case it.site == nil:
			sql, args = claimResolvedInstallation, append(args, now, string(figures))
		default:
			sql, args = claimResolvedSite, append(args, now, string(figures), it.site.Site.ID)
		}
		err = tx.QueryRow(ctx, sql, args...).Scan(&it.since, &it.n)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update alert state: %w", err)
		}
		it.claimed = true
		claimed = append(claimed, it)
	}
	for _, it := range items {
		switch {
		case !it.claimed && firing:
			it.alert = AlertNotDue
		case !it.claimed:
			it.alert = AlertNone
		}
	}
	if len(claimed) == 0 {
		return nil
	}
	for _, it := range claimed {
		it.alert = AlertError
	}
	text, level := message(claimed)
	if _, err := w.sender.SendMessage(ctx, text, level); err != nil {
		for _, it := range claimed {
			it.alert = AlertSendFailed
		}
		return &sendError{fmt.Errorf("send %s %s: %w", c.Code, c.Name, err)}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit alert state after sending: %w", err)
	}
	for _, it := range claimed {
		switch {
		case !firing:
			it.alert = AlertResolved
		case it.n > 1:
			it.alert = AlertRepeated
		default:
			it.alert = AlertFired
		}
	}
	return nil
}

// sendError is a message Telegram did not take (as opposed to bookkeeping
// that failed); the run reports it as it is.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// firingMessage is the plain text of an alarm (the client adds the prefix
// and escapes it).
func firingMessage(c Check, out Outcome, since time.Time, n int, now time.Time, repeat time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n%s\n", c.Code, c.Name, out.Summary)
	writeFigures(&b, out.Figures)
	if n > 1 {
		fmt.Fprintf(&b, "Still failing after %s (since %s). Reminder %d; repeated every %s until it passes.",
			humanDuration(now.Sub(since)), formatTime(since), n-1, humanDuration(repeat))
	} else {
		fmt.Fprintf(&b, "Failing since %s. Repeated every %s while it lasts.", formatTime(since), humanDuration(repeat))
	}
	return b.String()
}

func resolvedMessage(c Check, out Outcome, since, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\nPassing again after %s (failing since %s).\n%s\n",
		c.Code, c.Name, humanDuration(now.Sub(since)), formatTime(since), out.Summary)
	writeFigures(&b, out.Figures)
	return strings.TrimRight(b.String(), "\n")
}

// sitesFiringMessage lists the sites of one check that start failing or are
// due a reminder, one line each with its figure and what was expected.
func sitesFiringMessage(c Check, summary string, claimed []*alertItem, now time.Time, repeat time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s on %s\n", c.Code, c.Name, plural(len(claimed), "site"))
	if summary != "" {
		b.WriteString(summary + "\n")
	}
	for _, it := range claimed {
		fmt.Fprintf(&b, "• %s: %s. ", it.site.Site.Label(), it.site.Summary)
		if it.n > 1 {
			fmt.Fprintf(&b, "Still failing after %s (since %s), reminder %d.\n", humanDuration(now.Sub(it.since)), formatTime(it.since), it.n-1)
		} else {
			fmt.Fprintf(&b, "Failing since %s.\n", formatTime(it.since))
		}
	}
	fmt.Fprintf(&b, "Each site is repeated every %s while it lasts and resolved on its own.", humanDuration(repeat))
	return b.String()
}

func sitesResolvedMessage(c Check, claimed []*alertItem, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s passing again on %s\n", c.Code, c.Name, plural(len(claimed), "site"))
	for _, it := range claimed {
		fmt.Fprintf(&b, "• %s: passing again after %s (failing since %s). %s\n",
			it.site.Site.Label(), humanDuration(now.Sub(it.since)), formatTime(it.since), it.site.Summary)
	}
	return strings.TrimRight(b.String(), "\n")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func writeFigures(b *strings.Builder, figures map[string]any) {
	keys := make([]string, 0, len(figures))
	for k := range figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s: %v\n", k, figures[k])
	}
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// humanDuration is "7h", "1d 2h 5m", "15m" or "less than a minute".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "less than a minute"
	}
	var parts []string
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.size; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.name))
			d -= n * u.size
		}
	}
	return strings.Join(parts, " ")
}
