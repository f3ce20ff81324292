// Command generate rebuilds dashboard/dist/index.html from dashboard/src
// (`go generate ./dashboard`, run in the dashboard folder).
package main

import (
	"fmt"
	"os"

	"github.com/opsmantik/opsmantik/dashboard/bundle"
)

func main() {
	html, err := bundle.Build(".")
	if err == nil {
		err = os.WriteFile("dist/index.html", html, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("dashboard: wrote dist/index.html (%d bytes)\n", len(html))
}
