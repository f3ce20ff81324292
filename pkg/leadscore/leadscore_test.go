package leadscore

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestScoreEachWeightAtAndBelowItsEdge(t *testing.T) {
	tests := []struct {
		name string
		s    Session
		want int
	}{
		{"empty session", Session{}, 0},

		{"no phone click", Session{PhoneClicks: 0}, 0},
		{"first phone click", Session{PhoneClicks: 1}, 45},
		{"second phone click", Session{PhoneClicks: 2}, 55},
		{"third phone click reaches the further cap", Session{PhoneClicks: 3}, 65},
		{"fourth phone click adds nothing", Session{PhoneClicks: 4}, 65},

		{"no WhatsApp click", Session{WhatsAppClicks: 0}, 0},
		{"first WhatsApp click", Session{WhatsAppClicks: 1}, 40},
		{"second WhatsApp click", Session{WhatsAppClicks: 2}, 50},
		{"third WhatsApp click reaches the further cap", Session{WhatsAppClicks: 3}, 60},
		{"fourth WhatsApp click adds nothing", Session{WhatsAppClicks: 4}, 60},

		{"no form submit", Session{FormSubmits: 0}, 0},
		{"first form submit", Session{FormSubmits: 1}, 50},
		{"second form submit", Session{FormSubmits: 2}, 60},
		{"third form submit reaches the further cap", Session{FormSubmits: 3}, 70},
		{"fourth form submit adds nothing", Session{FormSubmits: 4}, 70},

		{"engaged just below 30 s", Session{EngagedMS: 29_999}, 0},
		{"engaged 30 s", Session{EngagedMS: 30_000}, 5},
		{"engaged just below 2 min", Session{EngagedMS: 119_999}, 5},
		{"engaged 2 min", Session{EngagedMS: 120_000}, 10},
		{"engaged just below 5 min", Session{EngagedMS: 299_999}, 10},
		{"engaged 5 min", Session{EngagedMS: 300_000}, 15},
		{"engaged an hour counts the top tier once", Session{EngagedMS: 3_600_000}, 15},

		{"scroll 49 %", Session{MaxScroll: 49}, 0},
		{"scroll 50 %", Session{MaxScroll: 50}, 5},
		{"scroll 89 %", Session{MaxScroll: 89}, 5},
		{"scroll 90 %", Session{MaxScroll: 90}, 10},
		{"scroll 100 %", Session{MaxScroll: 100}, 10},

		{"one pageview", Session{Pageviews: 1}, 0},
		{"two pageviews", Session{Pageviews: 2}, 5},
		{"three pageviews", Session{Pageviews: 3}, 5},
		{"four pageviews", Session{Pageviews: 4}, 10},
		{"many pageviews", Session{Pageviews: 500}, 10},

		{"new visitor", Session{Returning: false}, 0},
		{"returning visitor", Session{Returning: true}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.s); got != tt.want {
				t.Errorf("Score(%+v) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

func TestScoreCapsAndClamps(t *testing.T) {
	tests := []struct {
		name string
		s    Session
		want int
	}{
		{"everything at its top is capped at 100",
			Session{PhoneClicks: 9, WhatsAppClicks: 9, FormSubmits: 9, EngagedMS: 1e9, MaxScroll: 100, Pageviews: 99, Returning: true}, 100},
		{"first phone click and first form submit",
			Session{PhoneClicks: 1, FormSubmits: 1, EngagedMS: 1}, 95},
		{"form and phone with engagement cap at 100",
			Session{PhoneClicks: 1, FormSubmits: 1, EngagedMS: 30_000}, 100},
		{"the sum just below the cap",
			Session{FormSubmits: 3, EngagedMS: 300_000, Pageviews: 2, Returning: true}, 95},
		{"engagement alone is at most 40",
			Session{EngagedMS: math.MaxInt64, MaxScroll: math.MaxInt, Pageviews: math.MaxInt, Returning: true}, 40},
		{"huge counts do not overflow",
			Session{PhoneClicks: math.MaxInt, WhatsAppClicks: math.MaxInt, FormSubmits: math.MaxInt}, 100},
		{"huge phone count alone stays at the per-kind cap",
			Session{PhoneClicks: math.MaxInt}, 65},
		{"negative inputs count as zero",
			Session{PhoneClicks: -1, WhatsAppClicks: -5, FormSubmits: math.MinInt, EngagedMS: -30_000, MaxScroll: -90, Pageviews: -4}, 0},
		{"a negative input does not cancel a positive one",
			Session{PhoneClicks: 1, FormSubmits: -3}, 45},
		{"scroll above 100 % counts as the top tier",
			Session{MaxScroll: 250}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.s); got != tt.want {
				t.Errorf("Score(%+v) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

func TestQualifiedIsStrictlyGreaterThanThreshold(t *testing.T) {
	tests := []struct {
		score, threshold int
		want             bool
	}{
		{DefaultThreshold - 1, DefaultThreshold, false},
		{DefaultThreshold, DefaultThreshold, false},
		{DefaultThreshold + 1, DefaultThreshold, true},
		{100, DefaultThreshold, true},
		{0, 0, false},
		{1, 0, true},
		{100, 100, false},
		{50, 49, true},
	}
	for _, tt := range tests {
		if got := Qualified(tt.score, tt.threshold); got != tt.want {
			t.Errorf("Qualified(%d, %d) = %v, want %v", tt.score, tt.threshold, got, tt.want)
		}
	}
}

func TestDefaultThresholdIs80(t *testing.T) {
	if DefaultThreshold != 80 {
		t.Fatalf("DefaultThreshold = %d, want 80", DefaultThreshold)
	}
}

func TestDefaultReturnsAFreshTable(t *testing.T) {
	a := Default()
	a.Engaged[0].Points = 99
	a.PhoneClick.First = 0
	if b := Default(); b.Engaged[0].Points != 5 || b.PhoneClick.First != 45 {
		t.Fatalf("modifying one Default() changed the next: %+v", b)
	}
}

func TestWeightsScoreUsesTheTable(t *testing.T) {
	w := Weights{
		PhoneClick: Conversion{First: 1, Further: 2, FurtherCap: 3},
		Engaged:    []Tier{{AtLeast: 0, Points: 7}}, // unordered tiers: the best reached counts
		Pageviews:  []Tier{{AtLeast: 10, Points: 30}, {AtLeast: 1, Points: 20}},
		Returning:  4,
	}
	tests := []struct {
		s    Session
		want int
	}{
		{Session{}, 7},                    // engaged ≥ 0 always reached
		{Session{EngagedMS: -5}, 7},       // negative counts as zero, which reaches 0
		{Session{PhoneClicks: 1}, 1 + 7},  // first
		{Session{PhoneClicks: 2}, 3 + 7},  // + 2
		{Session{PhoneClicks: 3}, 4 + 7},  // + min(4, 3)
		{Session{Pageviews: 1}, 20 + 7},   // lower tier listed second
		{Session{Pageviews: 10}, 30 + 7},  // best tier only
		{Session{Returning: true}, 4 + 7}, // returning
		{Session{Pageviews: 99, Returning: true, PhoneClicks: 99}, 30 + 4 + 4 + 7},
	}
	for _, tt := range tests {
		if got := w.Score(tt.s); got != tt.want {
			t.Errorf("Score(%+v) = %d, want %d", tt.s, got, tt.want)
		}
	}
	if got := (Weights{}).Score(Session{PhoneClicks: 5, Pageviews: 5}); got != 0 {
		t.Errorf("empty table scored %d, want 0", got)
	}
}

func TestScoreIsPackageScoreOfDefault(t *testing.T) {
	s := Session{PhoneClicks: 1, EngagedMS: 200_000, MaxScroll: 70, Pageviews: 3}
	if a, b := Score(s), Default().Score(s); a != b {
		t.Fatalf("Score = %d, Default().Score = %d", a, b)
	}
}

// The score never decreases when any aggregate grows: recomputing it as a
// session's counters merge upward (GREATEST, counts of new events) can only
// raise it, so a qualified lead stays qualified.
func TestScoreNeverDecreasesWhenAnAggregateGrows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	small := func(n int) int { return rng.IntN(n+3) - 2 } // includes a few negatives
	grow := []struct {
		name string
		f    func(s *Session, by int)
	}{
		{"phone clicks", func(s *Session, by int) { s.PhoneClicks += by }},
		{"WhatsApp clicks", func(s *Session, by int) { s.WhatsAppClicks += by }},
		{"form submits", func(s *Session, by int) { s.FormSubmits += by }},
		{"engaged ms", func(s *Session, by int) { s.EngagedMS += int64(by) * 997 }},
		{"max scroll", func(s *Session, by int) { s.MaxScroll += by }},
		{"pageviews", func(s *Session, by int) { s.Pageviews += by }},
		{"returning", func(s *Session, _ int) { s.Returning = true }},
	}
	for i := 0; i < 20000; i++ {
		s := Session{
			PhoneClicks:    small(5),
			WhatsAppClicks: small(5),
			FormSubmits:    small(5),
			EngagedMS:      int64(small(400)) * 1000,
			MaxScroll:      small(110),
			Pageviews:      small(6),
			Returning:      rng.IntN(2) == 0,
		}
		before := Score(s)
		if before < 0 || before > MaxScore {
			t.Fatalf("Score(%+v) = %d, outside 0..%d", s, before, MaxScore)
		}
		g := grow[rng.IntN(len(grow))]
		grown := s
		g.f(&grown, 1+rng.IntN(300))
		if after := Score(grown); after < before {
			t.Fatalf("growing %s: Score(%+v) = %d < Score(%+v) = %d", g.name, grown, after, s, before)
		}
	}
}

// Along each aggregate alone, every step up from below zero never lowers the score.
func TestScoreIsMonotoneAlongEachAggregate(t *testing.T) {
	axes := []struct {
		name  string
		steps int
		set   func(n int) Session
	}{
		{"phone clicks", 10, func(n int) Session { return Session{PhoneClicks: n} }},
		{"WhatsApp clicks", 10, func(n int) Session { return Session{WhatsAppClicks: n} }},
		{"form submits", 10, func(n int) Session { return Session{FormSubmits: n} }},
		{"engaged ms", 400_000, func(n int) Session { return Session{EngagedMS: int64(n)} }},
		{"max scroll", 110, func(n int) Session { return Session{MaxScroll: n} }},
		{"pageviews", 10, func(n int) Session { return Session{Pageviews: n} }},
	}
	for _, a := range axes {
		prev := Score(a.set(-2))
		for n := -1; n <= a.steps; n++ {
			got := Score(a.set(n))
			if got < prev {
				t.Fatalf("%s: score fell from %d to %d at %d", a.name, prev, got, n)
			}
			prev = got
		}
	}
}
