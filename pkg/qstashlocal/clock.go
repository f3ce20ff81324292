package qstashlocal

import (
	"slices"
	"sync"
	"time"
)

// Clock is where the server reads the time (signatures, dedup window,
// not-before, records) and schedules its waits (delay, back-off, Retry-After).
// AfterFunc must run f in its own goroutine, as time.AfterFunc does; a wait
// of zero or less runs f at once.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled wait; Stop cancels it and reports whether it was still
// pending.
type Timer interface {
	Stop() bool
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// ManualClock is a Clock that moves only when told to, for exact tests of the
// dedup window, delays and the back-off schedule: waits fire when Advance (or
// Set) reaches them, never on their own, except waits of zero or less, which
// fire at once as with time.AfterFunc.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*manualTimer
}

type manualTimer struct {
	clock *ManualClock
	at    time.Time
	seq   int
	f     func()
}

// NewManualClock returns a ManualClock reading start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f for Now()+d.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTimer{clock: c, at: c.now.Add(d), seq: c.seq, f: f}
	if d <= 0 {
		go f()
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d, starts every wait that is now due (in
// the order they are due, each in its own goroutine) and returns how many it
// started.
func (c *ManualClock) Advance(d time.Duration) int {
	c.mu.Lock()
	return c.setLocked(c.now.Add(d))
}

// Set moves the clock to t (forward or back) and starts the waits then due,
// as Advance does.
func (c *ManualClock) Set(t time.Time) int {
	c.mu.Lock()
	return c.setLocked(t)
}

// Waiting is the number of scheduled waits not yet due.
func (c *ManualClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// setLocked is called with c.mu held and releases it.
func (c *ManualClock) setLocked(t time.Time) int {
	c.now = t
	var due, rest []*manualTimer
	for _, tm := range c.timers {
		if !tm.at.After(t) {
			due = append(due, tm)
		} else {
			rest = append(rest, tm)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *manualTimer) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	for _, tm := range due {
		go tm.f()
	}
	return len(due)
}

func (t *manualTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, tm := range c.timers {
		if tm == t {
			c.timers = slices.Delete(c.timers, i, i+1)
			return true
		}
	}
	return false
}
