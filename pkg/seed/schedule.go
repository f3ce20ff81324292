package seed

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// The rhythm sessions follow, in the site's local time: a day of two peaks
// (late morning and evening) over a quiet night, and quieter weekends.
var (
	hourWeights = [24]float64{
		2.0, 1.3, 0.9, 0.7, 0.6, 0.8, 1.5, 2.8, 4.2, 5.4, 6.0, 6.2,
		5.8, 5.6, 5.9, 6.0, 5.8, 5.6, 5.8, 6.3, 6.6, 6.0, 4.6, 3.2,
	}
	weekdayWeights = [7]float64{ // Sunday first, as time.Weekday
		0.78, 1.08, 1.10, 1.08, 1.05, 0.97, 0.80,
	}
)

// slot is one hour of one site-local day (or what of it has passed by now)
// and the number of sessions that start in it.
type slot struct {
	start, end int64 // Unix milliseconds, [start, end)
	sessions   int64
}

// plan spreads sessions over the last days site-local days ending with the
// day of now (that day only up to now). Each local day is cut into hours from
// its local midnight, so a day with a DST change has 23 or 25 of them and
// zones with half-hour offsets stay on their own hours. Every day has its own
// weight (weekday, a slow trend, some noise) and every hour the weight of its
// local hour; the counts are the largest-remainder rounding of sessions by
// weight, so they add up exactly and depend only on the seed.
func plan(r *rand.Rand, loc *time.Location, now time.Time, days int, sessions int64) []slot {
	nowMS := now.UnixMilli()
	local := now.In(loc)
	y, m, d := local.Date()
	var slots []slot
	var weights []float64
	for i := range days {
		day := time.Date(y, m, d-(days-1-i), 0, 0, 0, 0, loc)
		next := time.Date(y, m, d-(days-1-i)+1, 0, 0, 0, 0, loc)
		trend := 0.9 + 0.2*float64(i+1)/float64(days)
		dayWeight := weekdayWeights[day.Weekday()] * trend * (0.88 + 0.24*r.Float64())
		for t := day; t.Before(next); t = t.Add(time.Hour) {
			start := t.UnixMilli()
			end := min(t.Add(time.Hour).UnixMilli(), next.UnixMilli(), nowMS)
			if end <= start {
				continue
			}
			share := float64(end-start) / float64(time.Hour.Milliseconds())
			slots = append(slots, slot{start: start, end: end})
			weights = append(weights, dayWeight*hourWeights[t.In(loc).Hour()]*share)
		}
	}
	if len(slots) == 0 {
		return nil
	}
	total := 0.0
	for _, w := range weights {
		total += w
	}
	type rest struct {
		i    int
		frac float64
	}
	rests := make([]rest, len(slots))
	var given int64
	for i, w := range weights {
		exact := float64(sessions) * w / total
		n := math.Floor(exact)
		slots[i].sessions = int64(n)
		given += int64(n)
		rests[i] = rest{i, exact - n}
	}
	slices.SortStableFunc(rests, func(a, b rest) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for k := int64(0); given < sessions; k++ {
		slots[rests[k%int64(len(rests))].i].sessions++
		given++
	}
	return slots
}

// clock hands out session start times in ascending order: within a slot,
// the sorted values of n uniform draws, made one at a time (the smallest of
// j uniforms on [u, 1) is u + (1-u)(1 - U^(1/j))), so no slot's times are
// ever held in memory.
type clock struct {
	slots []slot
	i     int     // current slot
	left  int64   // sessions still to start in it
	u     float64 // position of the last start within it, 0..1
}

func newClock(slots []slot) *clock {
	c := &clock{slots: slots, i: -1}
	c.advance()
	return c
}

func (c *clock) advance() {
	for c.left == 0 && c.i+1 < len(c.slots) {
		c.i++
		c.left, c.u = c.slots[c.i].sessions, 0
	}
}

// next returns the next start time in Unix milliseconds and the end of its
// slot; ok is false when every session has started.
func (c *clock) next(r *rand.Rand) (at int64, ok bool) {
	if c.left == 0 {
		return 0, false
	}
	s := c.slots[c.i]
	c.u += (1 - c.u) * (1 - math.Pow(r.Float64(), 1/float64(c.left)))
	c.left--
	at = s.start + int64(c.u*float64(s.end-s.start))
	at = min(max(at, s.start), s.end-1)
	c.advance()
	return at, true
}
