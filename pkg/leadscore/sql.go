package leadscore

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Columns names the sessions columns the score is computed from.
type Columns struct {
	PhoneClicks, WhatsAppClicks, FormSubmits string
	EngagedMS, MaxScroll, Pageviews          string
	Returning, Bot                           string
}

// SessionColumns are the columns of the sessions table.
var SessionColumns = Columns{
	PhoneClicks: "phone_clicks", WhatsAppClicks: "whatsapp_clicks", FormSubmits: "form_submits",
	EngagedMS: "engaged_ms", MaxScroll: "max_scroll", Pageviews: "pageviews",
	Returning: "is_returning", Bot: "is_bot",
}

// SQL renders w as one SQL expression over the columns c: the same score as
// Score, for the generated column sessions.lead_score (a bot scores 0). The
// migration that defines the column holds the rendered text; a test keeps
// the two equal and checks that PostgreSQL and Go agree on random sessions,
// so the weights still have one home: this package.
func (w Weights) SQL(c Columns) string {
	terms := []string{
		w.PhoneClick.sql(c.PhoneClicks),
		w.WhatsAppClick.sql(c.WhatsAppClicks),
		w.FormSubmit.sql(c.FormSubmits),
		tiersSQL(w.Engaged, c.EngagedMS),
		tiersSQL(w.Scroll, c.MaxScroll),
		tiersSQL(w.Pageviews, c.Pageviews),
		fmt.Sprintf("CASE WHEN %s THEN %d ELSE 0 END", c.Returning, w.Returning),
	}
	return fmt.Sprintf("(CASE WHEN %s THEN 0 ELSE LEAST(%d, GREATEST(0, %s)) END)::smallint",
		c.Bot, MaxScore, strings.Join(terms, " + "))
}

func (cv Conversion) sql(col string) string {
	if cv.Further <= 0 || cv.FurtherCap <= 0 {
		return fmt.Sprintf("CASE WHEN %s > 0 THEN %d ELSE 0 END", col, cv.First)
	}
	// As points(): bound the count of further events before multiplying.
	return fmt.Sprintf("CASE WHEN %[1]s > 0 THEN %[2]d + LEAST(LEAST(%[1]s::bigint - 1, %[3]d) * %[4]d, %[5]d) ELSE 0 END",
		col, cv.First, cv.FurtherCap/cv.Further+1, cv.Further, cv.FurtherCap)
}

// tiersSQL is a CASE over the tiers, best points first, so that the first
// tier reached is the best one (as tierPoints).
func tiersSQL(tiers []Tier, col string) string {
	sorted := slices.Clone(tiers)
	slices.SortStableFunc(sorted, func(a, b Tier) int { return cmp.Compare(b.Points, a.Points) })
	var b strings.Builder
	b.WriteString("CASE")
	for _, t := range sorted {
		if t.Points <= 0 {
			continue
		}
		if t.AtLeast <= 0 { // tierPoints counts a negative value as zero
			fmt.Fprintf(&b, " WHEN GREATEST(%s, 0) >= %d THEN %d", col, t.AtLeast, t.Points)
			continue
		}
		fmt.Fprintf(&b, " WHEN %s >= %d THEN %d", col, t.AtLeast, t.Points)
	}
	b.WriteString(" ELSE 0 END")
	return b.String()
}
