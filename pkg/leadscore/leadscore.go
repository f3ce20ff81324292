package leadscore

// MaxScore is the highest score a session can have; every total is capped here.
const MaxScore = 100

// DefaultThreshold is a site's lead-score threshold unless it configures another:
// a session is a qualified lead when its score is greater than the threshold.
const DefaultThreshold = 80

// Session holds the aggregates the score is computed from.
type Session struct {
	PhoneClicks    int
	WhatsAppClicks int
	FormSubmits    int
	EngagedMS      int64 // engaged milliseconds in the session
	MaxScroll      int   // deepest scroll, percent 0-100
	Pageviews      int
	Returning      bool
}

// Weights is the one table of weights. Default returns the defaults; a caller
// may tune a copy and call its Score method.
type Weights struct {
	// PhoneClick, WhatsAppClick and FormSubmit score the conversion events.
	PhoneClick    Conversion
	WhatsAppClick Conversion
	FormSubmit    Conversion

	// Engaged scores engaged time, with tier thresholds in milliseconds.
	Engaged []Tier
	// Scroll scores the deepest scroll, with tier thresholds in percent.
	Scroll []Tier
	// Pageviews scores the number of pageviews.
	Pageviews []Tier

	// Returning is added when the visitor has been seen in an earlier session.
	Returning int
}

// Conversion scores one kind of conversion event: First for the first one,
// Further for each one after it, the further ones together at most FurtherCap.
// A Further or FurtherCap of zero or less means further events add nothing.
type Conversion struct {
	First      int
	Further    int
	FurtherCap int
}

// Tier awards Points when an aggregate is at least AtLeast. Of a list of tiers
// only the best one reached counts, so tiers never add up.
type Tier struct {
	AtLeast int64
	Points  int
}

// Default returns the default table of weights (see the package documentation).
// Each call returns a fresh copy, so callers may modify it.
func Default() Weights {
	return Weights{
		PhoneClick:    Conversion{First: 45, Further: 10, FurtherCap: 20},
		WhatsAppClick: Conversion{First: 40, Further: 10, FurtherCap: 20},
		FormSubmit:    Conversion{First: 50, Further: 10, FurtherCap: 20},
		Engaged: []Tier{
			{AtLeast: 30_000, Points: 5},
			{AtLeast: 120_000, Points: 10},
			{AtLeast: 300_000, Points: 15},
		},
		Scroll: []Tier{
			{AtLeast: 50, Points: 5},
			{AtLeast: 90, Points: 10},
		},
		Pageviews: []Tier{
			{AtLeast: 2, Points: 5},
			{AtLeast: 4, Points: 10},
		},
		Returning: 5,
	}
}

// Score returns the session's lead score under the default weights, 0 to MaxScore.
func Score(s Session) int {
	return Default().Score(s)
}

// Score returns the session's lead score under w, 0 to MaxScore. Negative
// aggregates count as zero.
func (w Weights) Score(s Session) int {
	total := w.PhoneClick.points(s.PhoneClicks) +
		w.WhatsAppClick.points(s.WhatsAppClicks) +
		w.FormSubmit.points(s.FormSubmits) +
		tierPoints(w.Engaged, s.EngagedMS) +
		tierPoints(w.Scroll, int64(s.MaxScroll)) +
		tierPoints(w.Pageviews, int64(s.Pageviews))
	if s.Returning {
		total += int64(w.Returning)
	}
	return int(min(max(total, 0), MaxScore))
}

// Qualified reports whether score is greater than (strictly) threshold.
func Qualified(score, threshold int) bool {
	return score > threshold
}

// points scores n events of one kind. It works in int64 and bounds the count
// before multiplying, so that no count can overflow.
func (c Conversion) points(n int) int64 {
	if n <= 0 {
		return 0
	}
	if c.Further <= 0 || c.FurtherCap <= 0 {
		return int64(c.First)
	}
	// Beyond cap/further+1 further events the cap is reached anyway.
	further := min(int64(n-1), int64(c.FurtherCap)/int64(c.Further)+1)
	return int64(c.First) + min(further*int64(c.Further), int64(c.FurtherCap))
}

// tierPoints returns the points of the best tier that v reaches, or 0.
func tierPoints(tiers []Tier, v int64) int64 {
	v = max(v, 0)
	best := int64(0)
	for _, t := range tiers {
		if v >= t.AtLeast && int64(t.Points) > best {
			best = int64(t.Points)
		}
	}
	return best
}
