package stats_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/opsmantik/opsmantik/pkg/dbtest"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

// equalityZones: east of UTC, west of it, a clock change at local midnight
// (Santiago), a quarter-hour offset; two of them change their clocks twice
// a year, so every span of the data holds clock changes.
var equalityZones = []string{"Asia/Tokyo", "America/Los_Angeles", "America/Santiago", "Asia/Kathmandu"}

// TestViewAndLiveAgree generates sessions across sites in several time
// zones (many around local midnight and around clock changes, bots
// included), refreshes the view and then, for random ranges, filters and
// refresh instants, requires the mixed view+live answer to equal the
// all-live one exactly, and the all-live one to equal figures computed here
// in Go from the generated rows. OPSMANTIK_TEST_SEED repeats a run.
func TestViewAndLiveAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("OPSMANTIK_TEST_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (OPSMANTIK_TEST_SEED repeats it)", seed)
	rng := rand.New(rand.NewPCG(seed, 0x57a75))

	var dbNow time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&dbNow); err != nil {
		t.Fatal(err)
	}
	spanStart, spanEnd := dbNow.AddDate(0, 0, -400), dbNow.Add(24*time.Hour)

	type siteData struct {
		id       int64
		loc      *time.Location
		sessions []session
	}
	var all []siteData
	for i, zone := range equalityZones {
		loc := mustLoad(t, zone)
		site := addSite(t, pool, "site"+strconv.Itoa(i), zone)
		changes := clockChanges(loc, spanStart, spanEnd)
		var ss []session
		for range 2500 {
			ss = append(ss, randomSession(rng, site.ID, loc, spanStart, spanEnd, changes))
		}
		insertSessions(t, pool, ss)
		all = append(all, siteData{id: site.ID, loc: loc, sessions: ss})
	}
	scores := map[uuid.UUID]int{}
	rows, err := pool.Query(ctx, `SELECT id, lead_score FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var score int
		if err := rows.Scan(&id, &score); err != nil {
			t.Fatal(err)
		}
		scores[id] = score
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	refresh(t, pool)

	svc := stats.NewService(pool, stats.WithClock(fixedClock(dbNow)))
	mixed := 0
	const rounds = 80
	for round := range rounds {
		sd := all[rng.IntN(len(all))]
		from := spanStart.Add(time.Duration(rng.Int64N(int64(spanEnd.Sub(spanStart))))).In(sd.loc)
		days := 1 + rng.IntN(stats.MaxDays)
		if rng.IntN(3) == 0 {
			days = 1 + rng.IntN(10)
		}
		fromDate := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
		req := stats.Request{From: fromDate.Format("2006-01-02"), To: fromDate.AddDate(0, 0, days-1).Format("2006-01-02")}
		if rng.IntN(5) < 2 {
			req.TrafficSource = stats.TrafficSources[rng.IntN(len(stats.TrafficSources))]
		}
		if rng.IntN(10) < 3 {
			req.DeviceType = stats.DeviceTypes[rng.IntN(len(stats.DeviceTypes))]
		}
		// Any instant up to now could have been the view's refresh: the
		// refresh above covers every day before it. Mostly one inside the
		// range, so that the answer mixes both paths.
		lo, hi := spanStart, dbNow
		if rng.IntN(5) < 3 {
			lo = time.Date(fromDate.Year(), fromDate.Month(), fromDate.Day(), 0, 0, 0, 0, sd.loc)
			if end := lo.AddDate(0, 0, days); end.Before(hi) {
				hi = end
			}
			if !lo.Before(hi) {
				lo = spanStart
			}
		}
		cut := lo.Add(time.Duration(rng.Int64N(int64(hi.Sub(lo)))))
		refreshedAt(t, pool, cut)

		view, err := svc.Summary(ctx, sd.id, req)
		if err != nil {
			t.Fatal(err)
		}
		live, err := svc.LiveSummary(ctx, sd.id, req)
		if err != nil {
			t.Fatal(err)
		}
		if view.ServedFrom.ViewDays+view.ServedFrom.LiveDays != days || live.ServedFrom.ViewDays != 0 {
			t.Fatalf("round %d %+v: served_from %+v and %+v for %d days", round, req, view.ServedFrom, live.ServedFrom, days)
		}
		if view.ServedFrom.ViewDays > 0 && view.ServedFrom.LiveDays > 0 {
			mixed++
		}
		if !reflect.DeepEqual(withoutServedFrom(view), withoutServedFrom(live)) {
			v, _ := json.Marshal(withoutServedFrom(view))
			l, _ := json.Marshal(withoutServedFrom(live))
			t.Fatalf("round %d, site %s, %+v, refreshed at %s (served %+v):\nview+live %s\n all live %s", round, sd.loc, req, cut, view.ServedFrom, v, l)
		}
		checkAgainstGo(t, round, live, sd.sessions, sd.loc, scores, req)
	}
	if mixed < rounds/4 {
		t.Errorf("only %d of %d rounds mixed view and live days", mixed, rounds)
	}
	t.Logf("%d of %d rounds mixed view and live days", mixed, rounds)
}

// clockChanges lists the instants in from..to at which loc's UTC offset
// changes.
func clockChanges(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	_, prev := from.In(loc).Zone()
	for t := from; t.Before(to); t = t.Add(time.Hour) {
		if _, off := t.In(loc).Zone(); off != prev {
			// Find the exact instant within the hour.
			lo, hi := t.Add(-time.Hour), t
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2)
				if _, o := mid.In(loc).Zone(); o == prev {
					lo = mid
				} else {
					hi = mid
				}
			}
			out = append(out, hi)
			prev = off
		}
	}
	return out
}

func randomSession(rng *rand.Rand, site int64, loc *time.Location, from, to time.Time, changes []time.Time) session {
	micro := func(max time.Duration) time.Duration {
		return time.Duration(rng.Int64N(int64(max/time.Microsecond))) * time.Microsecond
	}
	var started time.Time
	switch k := rng.IntN(4); {
	case k == 0 && len(changes) > 0: // around a clock change
		started = changes[rng.IntN(len(changes))].Add(micro(6*time.Hour) - 3*time.Hour)
	case k <= 1: // around a local midnight
		d := from.Add(time.Duration(rng.Int64N(int64(to.Sub(from))))).In(loc)
		midnight := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
		started = midnight.Add(micro(20*time.Minute) - 10*time.Minute)
	default:
		started = from.Add(micro(to.Sub(from)))
	}
	s := session{site: site, id: uuid.New(), started: started.Truncate(time.Microsecond),
		source:    stats.TrafficSources[rng.IntN(len(stats.TrafficSources))],
		device:    stats.DeviceTypes[rng.IntN(len(stats.DeviceTypes))],
		pageviews: rng.IntN(5), engagedMs: rng.Int64N(400_000), scroll: rng.IntN(101),
		returning: rng.IntN(5) == 0, bot: rng.IntN(10) == 0}
	switch rng.IntN(6) {
	case 0:
		s.duration = 0
	case 1:
		s.duration = 10 * time.Second
	case 2:
		s.duration = 10*time.Second - time.Microsecond
	default:
		s.duration = micro(20 * time.Minute)
	}
	if rng.IntN(10) == 0 {
		s.phone = 1 + rng.IntN(3)
	}
	if rng.IntN(12) == 0 {
		s.whatsapp = 1 + rng.IntN(2)
	}
	if rng.IntN(20) == 0 {
		s.forms = 1
	}
	return s
}

// checkAgainstGo computes the figures of STATS-API.md from the generated
// rows with Go's own time zone conversion. Counts must match exactly;
// averages to 1e-12 (the database divides exact decimals).
func checkAgainstGo(t *testing.T, round int, got stats.Answer, ss []session, loc *time.Location, scores map[uuid.UUID]int, req stats.Request) {
	t.Helper()
	type acc struct {
		n, pv, conv, converted, qualified, bounced int64
		micros                                     int64
	}
	add := func(a *acc, s session) {
		conv := int64(s.phone + s.whatsapp + s.forms)
		a.n++
		a.pv += int64(s.pageviews)
		a.conv += conv
		if conv > 0 {
			a.converted++
		}
		if scores[s.id] > 80 {
			a.qualified++
		}
		if !(s.duration >= 10*time.Second || s.pageviews >= 2 || conv > 0) {
			a.bounced++
		}
		a.micros += s.duration.Microseconds()
	}
	total, days, sources, devices := acc{}, map[string]*acc{}, map[string]*acc{}, map[string]*acc{}
	for _, s := range ss {
		day := s.started.In(loc).Format("2006-01-02")
		if s.bot || day < req.From || day > req.To ||
			(req.TrafficSource != "" && s.source != req.TrafficSource) || (req.DeviceType != "" && s.device != req.DeviceType) {
			continue
		}
		add(&total, s)
		for _, m := range []struct {
			m   map[string]*acc
			key string
		}{{days, day}, {sources, s.source}, {devices, s.device}} {
			if m.m[m.key] == nil {
				m.m[m.key] = &acc{}
			}
			add(m.m[m.key], s)
		}
	}
	check := func(what string, f stats.Figures, a acc) {
		t.Helper()
		avg, bounce := 0.0, 0.0
		if a.n > 0 {
			avg = float64(a.micros) / 1e6 / float64(a.n)
			bounce = float64(a.bounced) / float64(a.n)
		}
		if f.Sessions != a.n || f.Pageviews != a.pv || f.Conversions != a.conv || f.ConvertedSessions != a.converted ||
			f.QualifiedLeads != a.qualified || f.BounceRate != bounce || math.Abs(f.AvgDurationS-avg) > 1e-12*math.Max(1, avg) {
			t.Fatalf("round %d %+v, %s: got %+v, computed %+v (avg %v, bounce %v)", round, req, what, f, a, avg, bounce)
		}
	}
	check("totals", got.Totals, total)
	for _, d := range got.Days {
		a := acc{}
		if days[d.Date] != nil {
			a = *days[d.Date]
		}
		check("day "+d.Date, d.Figures, a)
	}
	if len(got.TrafficSources) != len(sources) || len(got.Devices) != len(devices) {
		t.Fatalf("round %d: %d sources and %d devices, computed %d and %d", round, len(got.TrafficSources), len(got.Devices), len(sources), len(devices))
	}
	for i, s := range got.TrafficSources {
		check("source "+s.TrafficSource, s.Figures, *sources[s.TrafficSource])
		if i > 0 && s.Sessions > got.TrafficSources[i-1].Sessions {
			t.Fatalf("round %d: sources not sorted by sessions: %+v", round, got.TrafficSources)
		}
	}
	for i, d := range got.Devices {
		check("device "+d.DeviceType, d.Figures, *devices[d.DeviceType])
		if i > 0 && d.Sessions > got.Devices[i-1].Sessions {
			t.Fatalf("round %d: devices not sorted by sessions: %+v", round, got.Devices)
		}
	}
}
