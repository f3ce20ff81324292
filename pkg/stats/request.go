package stats

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxDays is the longest range one request may ask for.
const MaxDays = 400

// dateLayout is a site-local date in requests and answers.
const dateLayout = "2006-01-02"

// Periods are the named ranges: the last N site-local days ending today.
var periods = map[string]int{"today": 1, "7d": 7, "30d": 30, "90d": 90}

// TrafficSources and DeviceTypes are the filter values (DESIGN.md,
// "Definitions"; the sessions table's CHECK constraints hold the same).
var (
	TrafficSources = []string{"google_ads", "paid", "organic_search", "social", "referral", "direct"}
	DeviceTypes    = []string{"mobile", "tablet", "desktop", "unknown"}
)

// Request is what a caller asks for: either Period or From and To, and
// optional filters ("" is no filter).
type Request struct {
	Period        string
	From, To      string // site-local YYYY-MM-DD, inclusive
	TrafficSource string
	DeviceType    string
}

// InvalidRangeError is a request the endpoint answers with 400 invalid_range.
type InvalidRangeError struct{ Detail string }

func (e *InvalidRangeError) Error() string { return "invalid_range: " + e.Detail }

func invalid(format string, args ...any) error {
	return &InvalidRangeError{Detail: fmt.Sprintf(format, args...)}
}

// ParseRequest reads a request from query parameters (from, to, period,
// traffic_source, device_type) and validates it. Other parameters are
// ignored; a parameter given twice is refused.
func ParseRequest(q url.Values) (Request, error) {
	var r Request
	for _, p := range []struct {
		name string
		dst  *string
	}{{"period", &r.Period}, {"from", &r.From}, {"to", &r.To}, {"traffic_source", &r.TrafficSource}, {"device_type", &r.DeviceType}} {
		switch vs := q[p.name]; len(vs) {
		case 0:
		case 1:
			*p.dst = vs[0]
		default:
			return Request{}, invalid("%s is given %d times", p.name, len(vs))
		}
	}
	return r, r.Validate()
}

// Validate checks everything that does not depend on the site: the dates,
// the period's name and the filter values.
func (r Request) Validate() error {
	switch {
	case r.Period != "" && (r.From != "" || r.To != ""):
		return invalid("give either period or from and to, not both")
	case r.Period != "":
		if _, ok := periods[r.Period]; !ok {
			return invalid("period %q: use today, 7d, 30d or 90d", r.Period)
		}
	case r.From == "" && r.To == "":
		return invalid("give from and to (site-local YYYY-MM-DD, inclusive) or period (today, 7d, 30d or 90d)")
	case r.From == "" || r.To == "":
		return invalid("give both from and to (site-local YYYY-MM-DD, inclusive)")
	default:
		from, err := parseDate("from", r.From)
		if err != nil {
			return err
		}
		to, err := parseDate("to", r.To)
		if err != nil {
			return err
		}
		if from.After(to) {
			return invalid("from %s is after to %s", r.From, r.To)
		}
		if n := dayCount(from, to); n > MaxDays {
			return invalid("from %s to %s is %d days; at most %d", r.From, r.To, n, MaxDays)
		}
	}
	if r.TrafficSource != "" && !slices.Contains(TrafficSources, r.TrafficSource) {
		return invalid("traffic_source %q: use one of %s", r.TrafficSource, strings.Join(TrafficSources, ", "))
	}
	if r.DeviceType != "" && !slices.Contains(DeviceTypes, r.DeviceType) {
		return invalid("device_type %q: use one of %s", r.DeviceType, strings.Join(DeviceTypes, ", "))
	}
	return nil
}

// dates returns the range of a valid request, given the site-local date of
// today.
func (r Request) dates(today time.Time) (from, to time.Time) {
	if n, ok := periods[r.Period]; ok {
		return today.AddDate(0, 0, 1-n), today
	}
	from, _ = parseDate("from", r.From)
	to, _ = parseDate("to", r.To)
	return from, to
}

// parseDate reads a YYYY-MM-DD date as midnight UTC, which is how this
// package does calendar arithmetic (no clock changes in UTC).
func parseDate(name, s string) (time.Time, error) {
	d, err := time.Parse(dateLayout, s)
	if err != nil || d.Format(dateLayout) != s {
		return time.Time{}, invalid("%s %q is not a date YYYY-MM-DD", name, s)
	}
	return d, nil
}

// dayCount is the number of days from..to, both included (0 when to is
// before from).
func dayCount(from, to time.Time) int {
	if to.Before(from) {
		return 0
	}
	return int(to.Sub(from).Hours()/24) + 1
}
