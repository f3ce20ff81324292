package telegram_test

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/opsmantik/opsmantik/pkg/telegram"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"fits", "short", 10, []string{"short"}},
		{"empty", "", 10, []string{""}},
		{"exactly the limit", "0123456789", 10, []string{"0123456789"}},
		{"after a line break in the second half", "aaaaaa\nbbbbbbbb", 10, []string{"aaaaaa\n", "bbbbbbbb"}},
		{"a space when no late line break", "aa\naaa bbbbbbbb", 10, []string{"aa\naaa ", "bbbbbbbb"}},
		{"an early line break over a hard cut", "aa\nbbbbbbbbbbbb", 10, []string{"aa\n", "bbbbbbbbbb", "bb"}},
		{"hard cut between characters", "abcdefghijkl", 5, []string{"abcde", "fghij", "kl"}},
		{"never inside a surrogate pair", "😀😀😀", 3, []string{"😀", "😀", "😀"}},
	}
	for _, tc := range cases {
		got := telegram.Split(tc.text, tc.limit)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%s: Split(%q, %d) = %q, want %q", tc.name, tc.text, tc.limit, got, tc.want)
		}
	}
}

// FuzzSplit checks the promises: nothing lost, every part within the limit,
// no empty part unless the text is empty, valid UTF-8 in every part.
func FuzzSplit(f *testing.F) {
	f.Add("hello world\nsecond line", 7)
	f.Add(strings.Repeat("😀a ", 50), 5)
	f.Add("&<>\n\n\n  ", 2)
	f.Add("", 1)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if !utf8.ValidString(text) {
			return
		}
		limit = limit%5000 + 1
		if limit < 0 {
			limit = -limit
		}
		parts := telegram.Split(text, limit)
		if strings.Join(parts, "") != text {
			t.Fatalf("parts %q do not join to %q", parts, text)
		}
		for _, p := range parts {
			if n := len(utf16.Encode([]rune(p))); n > max(limit, 2) {
				t.Fatalf("part %q is %d units, limit %d", p, n, limit)
			}
			if p == "" && text != "" {
				t.Fatalf("empty part in %q", parts)
			}
			if !utf8.ValidString(p) {
				t.Fatalf("part %q is not valid UTF-8", p)
			}
		}
	})
}
