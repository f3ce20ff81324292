// Command audit-integrity runs the data-integrity audit once per EventBridge
// event (daily at 03:15 UTC) and logs one JSON line with every check's
// figures; anomalies above AUDIT_THRESHOLD_PERCENT alarm on Telegram.
package main

import (
	"github.com/opsmantik/opsmantik/pkg/audit"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
)

func main() { lambdahost.Schedule(audit.FromConfig) }
