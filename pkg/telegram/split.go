package telegram

import "unicode/utf8"

// Split cuts text into parts of at most limit UTF-16 code units (how the Bot
// API counts a message's length). It cuts after a line break when one falls
// in the second half of a part, else after a space there, else after any
// line break or space, and only as a last resort between two characters.
// Nothing is dropped: the parts joined together are text. text must be valid
// UTF-8; a text within the limit is one part.
func Split(text string, limit int) []string {
	limit = max(limit, 2) // room for any one character
	var parts []string
	for utf16Len(text) > limit {
		cut := cutPoint(text, limit)
		parts = append(parts, text[:cut])
		text = text[cut:]
	}
	return append(parts, text)
}

// cutPoint is the byte offset where the first part of text ends.
func cutPoint(text string, limit int) int {
	var (
		units             int
		hard              int // last offset within the limit
		newline, space    int // offset after the last one within the limit
		lateNL, lateSpace int // the same, within the second half
	)
	for i, r := range text {
		n := 1
		if r >= 0x10000 {
			n = 2
		}
		if units+n > limit {
			break
		}
		units += n
		hard = i + utf8.RuneLen(r)
		switch r {
		case '\n':
			newline = hard
			if units > limit/2 {
				lateNL = hard
			}
		case ' ', '\t':
			space = hard
			if units > limit/2 {
				lateSpace = hard
			}
		}
	}
	for _, c := range []int{lateNL, lateSpace, newline, space} {
		if c > 0 {
			return c
		}
	}
	return hard
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
