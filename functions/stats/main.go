// Command stats is the dashboard's statistics endpoint (a Function URL):
// GET with a site's API key, daily figures out (shared/docs/STATS-API.md).
package main

import (
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/stats"
)

func main() { lambdahost.HTTP(stats.FromConfig) }
