// Command sync-google-ads is the Function URL QStash delivers conversions to:
// it verifies the signature and uploads the conversion to Google Ads (or GA4).
package main

import (
	"github.com/opsmantik/opsmantik/pkg/conversions"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
)

func main() { lambdahost.HTTP(conversions.WorkerFromConfig) }
