// Command test-notification is a Function URL that sends a test message to
// the operators' Telegram chat (POST, Authorization: Bearer CRON_SECRET).
package main

import (
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
	"github.com/opsmantik/opsmantik/pkg/testnotification"
)

func main() { lambdahost.HTTP(testnotification.FromConfig) }
