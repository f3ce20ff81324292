// Package stats is the dashboard's daily analytics (shared/docs/STATS-API.md):
// StatsService reads complete past days from the materialized view
// mv_daily_analytics_summary and the rest from the live sessions rows, in
// the site's time zone; the refresh that pg_cron, the command line, the local
// stack and the watchtower run; the pg_cron schedule; and the GET /api/stats
// handler.
//
// Every figure is defined once, in sql/0005_daily_analytics.sql: the summable
// columns by analytics_daily_sums (which the view is made of, and which the
// live path calls for its days), the two ratios by analytics_avg_duration_s
// and analytics_bounce_rate. One query (summaryQuery) adds the view's rows and
// the live rows up and applies the ratios, so that right after a refresh the
// mixed answer equals the all-live one to the last digit.
package stats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DB is what the service reads with (a pool, a connection, a transaction).
type DB interface {
	Querier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Querier runs one statement that returns one row.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrSiteNotFound is returned for a site id that does not exist.
var ErrSiteNotFound = errors.New("site not found")

// Figures are the figures of STATS-API.md for a set of sessions.
type Figures struct {
	Sessions          int64   `json:"sessions"`
	Pageviews         int64   `json:"pageviews"`
	Conversions       int64   `json:"conversions"`
	ConvertedSessions int64   `json:"converted_sessions"`
	QualifiedLeads    int64   `json:"qualified_leads"`
	AvgDurationS      float64 `json:"avg_duration_s"`
	BounceRate        float64 `json:"bounce_rate"`
}

// Day is one site-local date of the range.
type Day struct {
	Date string `json:"date"`
	Figures
}

// SourceFigures are one traffic source's figures over the range.
type SourceFigures struct {
	TrafficSource string `json:"traffic_source"`
	Figures
}

// DeviceFigures are one device type's figures over the range.
type DeviceFigures struct {
	DeviceType string `json:"device_type"`
	Figures
}

// ServedFrom says how many days came from the view and how many from the
// live rows, and when the view was last refreshed (nil: never).
type ServedFrom struct {
	ViewDays        int     `json:"view_days"`
	LiveDays        int     `json:"live_days"`
	ViewRefreshedAt *string `json:"view_refreshed_at"`
}

// Answer is the endpoint's 200 body.
type Answer struct {
	OK             bool            `json:"ok"`
	Site           string          `json:"site"`
	Timezone       string          `json:"timezone"`
	Currency       string          `json:"currency"`
	From           string          `json:"from"`
	To             string          `json:"to"`
	Totals         Figures         `json:"totals"`
	Days           []Day           `json:"days"`
	TrafficSources []SourceFigures `json:"traffic_sources"`
	Devices        []DeviceFigures `json:"devices"`
	ServedFrom     ServedFrom      `json:"served_from"`
}

// Service is StatsService.
type Service struct {
	db  DB
	now func() time.Time
}

// Option changes a Service's defaults.
type Option func(*Service)

// WithClock sets the clock that decides "today" (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService returns the service over db.
func NewService(db DB, opts ...Option) *Service {
	s := &Service{db: db, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// siteState is what the read rule needs, read in one statement: the site's
// current settings, today's site-local date, the view's last successful
// refresh and whether the view's rows for the site were computed with the
// current settings.
const siteStateQuery = `
SELECT st.public_id, st.timezone, st.currency,
       to_char(($2::timestamptz AT TIME ZONE st.timezone)::date, 'YYYY-MM-DD'),
       r.started_at,
       to_char((r.started_at AT TIME ZONE st.timezone)::date, 'YYYY-MM-DD'),
       coalesce((SELECT v.timezone = st.timezone AND v.lead_threshold = st.lead_threshold
                 FROM mv_daily_analytics_summary v WHERE v.site_id = st.id LIMIT 1), true)
FROM sites st
LEFT JOIN LATERAL (
    SELECT started_at FROM analytics_refreshes WHERE ok ORDER BY started_at DESC LIMIT 1
) r ON true
WHERE st.id = $1`

type siteState struct {
	publicID, timezone, currency string
	today                        time.Time
	refreshedAt                  *time.Time
	// viewFrom is the first day the view does not cover (the site-local
	// date of refreshedAt); zero when the view cannot be used for the site.
	viewFrom time.Time
}

func (s *Service) state(ctx context.Context, siteID int64) (siteState, error) {
	var st siteState
	var today string
	var cutoff *string
	var sameSettings bool
	err := s.db.QueryRow(ctx, siteStateQuery, siteID, s.now()).Scan(
		&st.publicID, &st.timezone, &st.currency, &today, &st.refreshedAt, &cutoff, &sameSettings)
	if errors.Is(err, pgx.ErrNoRows) {
		return siteState{}, ErrSiteNotFound
	}
	if err != nil {
		return siteState{}, fmt.Errorf("read site %d and the view's refresh: %w", siteID, err)
	}
	if st.today, err = time.Parse(dateLayout, today); err != nil {
		return siteState{}, fmt.Errorf("site %d: today %q: %w", siteID, today, err)
	}
	// A view computed under another time zone or lead threshold (the site
	// was changed since the refresh) is not used for the site until the
	// next refresh.
	if cutoff != nil && sameSettings {
		if st.viewFrom, err = time.Parse(dateLayout, *cutoff); err != nil {
			return siteState{}, fmt.Errorf("site %d: refresh date %q: %w", siteID, *cutoff, err)
		}
	}
	return st, nil
}

// Summary answers req for the site with id siteID by the read rule: days
// before the site-local date of the view's last refresh from the view, the
// others from the live rows.
func (s *Service) Summary(ctx context.Context, siteID int64, req Request) (Answer, error) {
	return s.summary(ctx, siteID, req, false)
}

// LiveSummary answers req from the live rows alone: the reference the view
// must agree with, and the benchmark's baseline.
func (s *Service) LiveSummary(ctx context.Context, siteID int64, req Request) (Answer, error) {
	return s.summary(ctx, siteID, req, true)
}

func (s *Service) summary(ctx context.Context, siteID int64, req Request, allLive bool) (Answer, error) {
	if err := req.Validate(); err != nil {
		return Answer{}, err
	}
	st, err := s.state(ctx, siteID)
	if err != nil {
		return Answer{}, err
	}
	from, to := req.dates(st.today)
	// The view serves the first viewDays days of the range, the live rows
	// the rest; either part may be empty.
	days := dayCount(from, to)
	viewDays := 0
	if !allLive && !st.viewFrom.IsZero() && st.viewFrom.After(from) {
		viewDays = min(days, dayCount(from, st.viewFrom.AddDate(0, 0, -1)))
	}
	a := Answer{
		OK: true, Site: st.publicID, Timezone: st.timezone, Currency: st.currency,
		From: from.Format(dateLayout), To: to.Format(dateLayout),
		TrafficSources: []SourceFigures{}, Devices: []DeviceFigures{},
		ServedFrom: ServedFrom{ViewDays: viewDays, LiveDays: days - viewDays},
	}
	if st.refreshedAt != nil {
		v := st.refreshedAt.UTC().Format(time.RFC3339Nano)
		a.ServedFrom.ViewRefreshedAt = &v
	}
	byDay, err := s.sums(ctx, siteID, from, to, viewDays, req, &a)
	if err != nil {
		return Answer{}, err
	}
	a.Days = make([]Day, 0, days)
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		date := d.Format(dateLayout)
		a.Days = append(a.Days, Day{Date: date, Figures: byDay[date]})
	}
	return a, nil
}

// summaryQuery adds up the view's rows for $2..$3 (when $8) and the live
// rows for $4..$5 (when $9) per grouping set, and turns the sums into the
// figures. GROUPING(day, traffic_source, device_type) tells the sets
// apart: 7 the totals, 3 a day, 5 a traffic source, 6 a device type.
const summaryQuery = `
WITH r AS (
    SELECT day, traffic_source, device_type, total_sessions, pageviews, total_conversions,
           converted_sessions, qualified_leads, duration_sum_s, bounced_sessions
    FROM mv_daily_analytics_summary
    WHERE $8::boolean AND site_id = $1 AND day BETWEEN $2::date AND $3::date
      AND ($6::text = '' OR traffic_source = $6::text) AND ($7::text = '' OR device_type = $7::text)
    UNION ALL
    SELECT day, traffic_source, device_type, total_sessions, pageviews, total_conversions,
           converted_sessions, qualified_leads, duration_sum_s, bounced_sessions
    FROM analytics_daily_sums($1, $4::date, $5::date)
    WHERE $9::boolean
      AND ($6::text = '' OR traffic_source = $6::text) AND ($7::text = '' OR device_type = $7::text)
)
SELECT GROUPING(day, traffic_source, device_type),
       coalesce(to_char(day, 'YYYY-MM-DD'), ''), coalesce(traffic_source, ''), coalesce(device_type, ''),
       coalesce(sum(total_sessions), 0)::bigint,
       coalesce(sum(pageviews), 0)::bigint,
       coalesce(sum(total_conversions), 0)::bigint,
       coalesce(sum(converted_sessions), 0)::bigint,
       coalesce(sum(qualified_leads), 0)::bigint,
       analytics_avg_duration_s(sum(duration_sum_s), sum(total_sessions)),
       analytics_bounce_rate(sum(bounced_sessions), sum(total_sessions))
FROM r
GROUP BY GROUPING SETS ((), (day), (traffic_source), (device_type))
ORDER BY 1, 5 DESC, 2, 3, 4`

// sums runs summaryQuery for from..to, the first viewDays days from the
// view, fills a's totals and breakdowns (most sessions first, then by name)
// and returns the figures by date.
func (s *Service) sums(ctx context.Context, siteID int64, from, to time.Time, viewDays int, req Request, a *Answer) (map[string]Figures, error) {
	// Dates outside from..to are never passed, even for an empty part
	// (the day before 0001-01-01 is no date).
	viewTo, liveFrom := from, to
	if viewDays > 0 {
		viewTo = from.AddDate(0, 0, viewDays-1)
	}
	if viewDays < dayCount(from, to) {
		liveFrom = from.AddDate(0, 0, viewDays)
	}
	rows, err := s.db.Query(ctx, summaryQuery, siteID,
		from.Format(dateLayout), viewTo.Format(dateLayout), liveFrom.Format(dateLayout), to.Format(dateLayout),
		req.TrafficSource, req.DeviceType, viewDays > 0, viewDays < dayCount(from, to))
	if err != nil {
		return nil, fmt.Errorf("sum daily analytics of site %d: %w", siteID, err)
	}
	defer rows.Close()
	days := map[string]Figures{}
	for rows.Next() {
		var set int
		var day, source, device string
		var f Figures
		if err := rows.Scan(&set, &day, &source, &device,
			&f.Sessions, &f.Pageviews, &f.Conversions, &f.ConvertedSessions, &f.QualifiedLeads, &f.AvgDurationS, &f.BounceRate); err != nil {
			return nil, fmt.Errorf("read daily analytics of site %d: %w", siteID, err)
		}
		switch set {
		case 7:
			a.Totals = f
		case 3:
			days[day] = f
		case 5:
			a.TrafficSources = append(a.TrafficSources, SourceFigures{TrafficSource: source, Figures: f})
		case 6:
			a.Devices = append(a.Devices, DeviceFigures{DeviceType: device, Figures: f})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read daily analytics of site %d: %w", siteID, err)
	}
	return days, nil
}
