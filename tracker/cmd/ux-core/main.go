// Command ux-core prints the minified tracker (tracker.Build) on stdout, for
// the tracker's benchmark (`make bench`) and for a look at what browsers get.
package main

import (
	"fmt"
	"os"

	"github.com/opsmantik/opsmantik/tracker"
)

func main() {
	min, err := tracker.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(min); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
