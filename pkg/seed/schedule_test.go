package seed

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestPlanCoversExactlyTheLastLocalDays(t *testing.T) {
	cases := []struct {
		zone string
		now  string
		days int
		// hours is the number of hour slots expected (DST days have 23 or 25).
		hours int
	}{
		{"Europe/Istanbul", "2026-03-10T09:30:00Z", 3, 24 + 24 + 13},     // 12:30 local: 12 full hours and a half
		{"America/Los_Angeles", "2026-03-10T20:00:00Z", 3, 23 + 24 + 13}, // 8 March 2026: 23 hours; 13:00 PDT
		{"Europe/Berlin", "2026-10-26T00:30:00Z", 2, 25 + 2},             // 25 October 2026: 25 hours; 01:30 CET
		{"Asia/Kolkata", "2026-01-01T00:00:00Z", 1, 6},                   // 05:30 IST: 5 full hours and a half
		{"UTC", "2026-01-01T00:00:00.001Z", 1, 1},
	}
	for _, c := range cases {
		t.Run(c.zone, func(t *testing.T) {
			loc := mustZone(t, c.zone)
			now, _ := time.Parse(time.RFC3339Nano, c.now)
			slots := plan(rand.New(rand.NewPCG(1, 2)), loc, now, c.days, 100_000)
			if len(slots) != c.hours {
				t.Fatalf("%d hour slots, want %d", len(slots), c.hours)
			}
			local := now.In(loc)
			first := time.Date(local.Year(), local.Month(), local.Day()-(c.days-1), 0, 0, 0, 0, loc)
			if got := time.UnixMilli(slots[0].start); !got.Equal(first) {
				t.Errorf("first slot starts %s, want local midnight %s", got.In(loc), first)
			}
			if got := slots[len(slots)-1].end; got != now.UnixMilli() {
				t.Errorf("last slot ends %s, want now", time.UnixMilli(got).In(loc))
			}
			var total int64
			for i, s := range slots {
				total += s.sessions
				if s.end <= s.start || (i > 0 && s.start != slots[i-1].end) {
					t.Fatalf("slot %d [%d, %d) does not follow the one before", i, s.start, s.end)
				}
				if s.end-s.start > time.Hour.Milliseconds() {
					t.Fatalf("slot %d is longer than an hour", i)
				}
			}
			if total != 100_000 {
				t.Errorf("%d sessions planned, want exactly 100000", total)
			}
		})
	}
}

func TestPlanFollowsTheLocalDayAndWeek(t *testing.T) {
	loc := mustZone(t, "America/New_York")
	now, _ := time.Parse(time.RFC3339, "2026-06-01T03:59:00Z") // 23:59 local on a Sunday
	slots := plan(rand.New(rand.NewPCG(7, 7)), loc, now, 28, 1_000_000)
	var byHour [24]int64
	var weekday, weekend int64
	for _, s := range slots {
		at := time.UnixMilli(s.start).In(loc)
		byHour[at.Hour()] += s.sessions
		if d := at.Weekday(); d == time.Saturday || d == time.Sunday {
			weekend += s.sessions
		} else {
			weekday += s.sessions
		}
	}
	if byHour[4]*5 > byHour[20] {
		t.Errorf("04:00 local has %d sessions, 20:00 %d: want a quiet night", byHour[4], byHour[20])
	}
	if perWeekday, perWeekendDay := weekday/20, weekend/8; perWeekendDay >= perWeekday {
		t.Errorf("%d sessions per weekend day, %d per weekday: want quieter weekends", perWeekendDay, perWeekday)
	}
}

func TestPlanWithNothingElapsedHasNoSlots(t *testing.T) {
	now, _ := time.Parse(time.RFC3339, "2026-01-01T00:00:00Z")
	if slots := plan(rand.New(rand.NewPCG(1, 1)), time.UTC, now, 1, 10); len(slots) != 0 {
		t.Fatalf("at local midnight with one day, %d slots: want none", len(slots))
	}
	if slots := plan(rand.New(rand.NewPCG(1, 1)), time.UTC, now, 2, 10); len(slots) != 24 {
		t.Fatalf("at local midnight with two days, %d slots: want yesterday's 24", len(slots))
	}
}

func TestClockIsAscendingWithinItsSlots(t *testing.T) {
	slots := []slot{{start: 0, end: 1000, sessions: 5000}, {start: 1000, end: 1001, sessions: 3}, {start: 1001, end: 2000, sessions: 0}, {start: 2000, end: 3000, sessions: 7}}
	c := newClock(slots)
	r := rand.New(rand.NewPCG(3, 4))
	var got []int64
	for {
		at, ok := c.next(r)
		if !ok {
			break
		}
		got = append(got, at)
	}
	if len(got) != 5010 {
		t.Fatalf("%d start times, want 5010", len(got))
	}
	for i, at := range got {
		if i > 0 && at < got[i-1] {
			t.Fatalf("time %d (%d) before the one before it (%d)", i, at, got[i-1])
		}
	}
	if got[4999] >= 1000 || got[5000] != 1000 || got[5002] != 1000 || got[5003] < 2000 || got[5009] >= 3000 {
		t.Fatalf("times leave their slots: %v", got[4998:])
	}
	// Uniform within a slot: about half of the first slot's starts in its first half.
	half := 0
	for _, at := range got[:5000] {
		if at < 500 {
			half++
		}
	}
	if half < 2300 || half > 2700 {
		t.Errorf("%d of 5000 starts in the first half of the slot: want about 2500", half)
	}
}

// The generator holds a ring of recent visitors, the plan's slots and the
// chunk being filled, whatever the number of sessions.
func TestGeneratorMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a million sessions")
	}
	now, _ := time.Parse(time.RFC3339, "2026-05-01T12:00:00Z")
	site := siteInfo{id: 1, publicID: "mem", domain: "shop.example", timezone: "UTC"}
	g := newGenerator(9, site, time.UTC, now, 1, 1_000_000) // the worst case: every session in one day
	var peak uint64
	var ms runtime.MemStats
	n := 0
	for more := true; more; {
		c := &chunk{sessions: make([]session, 0, DefaultChunk), events: make([]event, 0, 3*DefaultChunk)}
		more = g.fill(c, DefaultChunk)
		n += len(c.sessions)
		if n%100_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != 1_000_000 {
		t.Fatalf("%d sessions, want 1000000", n)
	}
	t.Logf("live heap at most %.1f MiB over 1,000,000 sessions", float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Errorf("live heap reached %.1f MiB: want it bounded (at most 64 MiB)", float64(peak)/(1<<20))
	}
}

// The browsers sessions are drawn from are what their tables say they are,
// to the ingest path's classifier: people on phones, desktops and tablets in
// the shares newAgent intends, and bots.
func TestAgentsAreClassifiedAsIntended(t *testing.T) {
	g := newGenerator(1, siteInfo{id: 1, publicID: "x", domain: "x.example", timezone: "UTC"}, time.UTC, time.Now(), 1, 1)
	want := map[int]string{}
	for i := range mobileUAs {
		want[i] = "mobile"
	}
	for i := range desktopUAs {
		want[len(mobileUAs)+i] = "desktop"
	}
	for i := range tabletUAs {
		want[len(mobileUAs)+len(desktopUAs)+i] = "tablet"
	}
	for i, a := range g.humans {
		if a.client.Bot || a.client.Device != want[i] || a.client.Browser == "" || len(a.screen) == 0 {
			t.Errorf("%q: %+v, want a person on a %s", a.ua, a.client, want[i])
		}
	}
	for _, a := range g.bots {
		if !a.client.Bot {
			t.Errorf("%q: %+v, want a bot", a.ua, a.client)
		}
	}
}
