// Command watchtower-cron runs the watchtower once per EventBridge event (every
// 15 minutes) and logs one JSON line with every check's figures and outcome.
package main

import (
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/watchtower"
)

func main() { lambdahost.Schedule(watchtower.FromConfig) }
