// Package tracker embeds the browser script tracker/ux-core.js and builds its
// minified form with esbuild, for `opsmantik dev` and the deploy artifact.
package tracker

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

//go:embed ux-core.js
var source []byte

// Source is the readable script, as a person edits it.
func Source() []byte { return source }

// Build minifies the script for browsers. The target, ES2020, keeps optional
// chaining as written (Chrome 80, Safari 13.1, Firefox 74 and later): it is
// part of what keeps the script within its size budget.
func Build() ([]byte, error) {
	res := api.Transform(string(source), api.TransformOptions{
		Loader:            api.LoaderJS,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsNone,
	})
	if len(res.Errors) > 0 {
		msgs := make([]string, len(res.Errors))
		for i, m := range res.Errors {
			msgs[i] = m.Text
		}
		return nil, fmt.Errorf("build tracker: %s", strings.Join(msgs, "; "))
	}
	return res.Code, nil
}
