package qstashlocal

import (
	"sync"
	"testing"
	"time"
)

func TestManualClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewManualClock(t0)
	var mu sync.Mutex
	var fired []string
	done := make(chan struct{}, 10)
	mark := func(name string) func() {
		return func() {
			mu.Lock()
			fired = append(fired, name)
			mu.Unlock()
			done <- struct{}{}
		}
	}
	c.AfterFunc(0, mark("now"))
	<-done
	c.AfterFunc(2*time.Second, mark("2s"))
	stopped := c.AfterFunc(time.Second, mark("stopped"))
	c.AfterFunc(3*time.Second, mark("3s"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once")
	}
	if c.Waiting() != 2 {
		t.Fatalf("Waiting = %d", c.Waiting())
	}
	if n := c.Advance(2*time.Second - time.Nanosecond); n != 0 {
		t.Fatalf("fired %d early", n)
	}
	if n := c.Advance(time.Nanosecond); n != 1 {
		t.Fatalf("Advance to 2s fired %d", n)
	}
	<-done
	if n := c.Set(t0.Add(time.Hour)); n != 1 {
		t.Fatalf("Set fired %d", n)
	}
	<-done
	if !c.Now().Equal(t0.Add(time.Hour)) {
		t.Errorf("Now = %v", c.Now())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != 3 || fired[0] != "now" || fired[1] != "2s" || fired[2] != "3s" {
		t.Errorf("fired %v", fired)
	}
}
