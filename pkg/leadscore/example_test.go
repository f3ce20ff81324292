package leadscore_test

import (
	"fmt"

	"github.com/opsmantik/opsmantik/pkg/leadscore"
)

// The worked examples of the package documentation, checked.

func ExampleScore_adVisitorCalls() {
	s := leadscore.Session{PhoneClicks: 1, EngagedMS: 45_000, MaxScroll: 60, Pageviews: 1}
	score := leadscore.Score(s)
	fmt.Println(score, leadscore.Qualified(score, leadscore.DefaultThreshold))
	// Output: 55 false
}

func ExampleScore_returningVisitorSendsForm() {
	s := leadscore.Session{FormSubmits: 1, EngagedMS: 130_000, MaxScroll: 90, Pageviews: 4, Returning: true}
	score := leadscore.Score(s)
	fmt.Println(score, leadscore.Qualified(score, leadscore.DefaultThreshold))
	// Output: 85 true
}

func ExampleScore_atThresholdIsNotQualified() {
	s := leadscore.Session{FormSubmits: 4, EngagedMS: 120_000, Pageviews: 1}
	score := leadscore.Score(s)
	fmt.Println(score, leadscore.Qualified(score, leadscore.DefaultThreshold))
	// Output: 80 false
}

func ExampleScore_capped() {
	s := leadscore.Session{PhoneClicks: 1, WhatsAppClicks: 1, EngagedMS: 360_000, MaxScroll: 100, Pageviews: 3}
	score := leadscore.Score(s)
	fmt.Println(score, leadscore.Qualified(score, leadscore.DefaultThreshold))
	// Output: 100 true
}

func ExampleScore_engagementAlone() {
	s := leadscore.Session{EngagedMS: 360_000, MaxScroll: 100, Pageviews: 6, Returning: true}
	score := leadscore.Score(s)
	fmt.Println(score, leadscore.Qualified(score, leadscore.DefaultThreshold))
	// Output: 40 false
}

// A site can tune a copy of the default table.
func ExampleWeights_Score() {
	w := leadscore.Default()
	w.FormSubmit.First = 70
	s := leadscore.Session{FormSubmits: 1, Pageviews: 2}
	fmt.Println(leadscore.Score(s), w.Score(s))
	// Output: 55 75
}
