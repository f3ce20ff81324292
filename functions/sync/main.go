// Command sync is the ingest endpoint (a Function URL): the tracker's batches go in, sessions and events come out in PostgreSQL.
package main

import (
	"github.com/opsmantik/opsmantik/pkg/ingest"
	"github.com/opsmantik/opsmantik/pkg/lambdahost"
)

func main() { lambdahost.HTTP(ingest.FromConfig) }
