// Package migrations embeds the numbered SQL migrations that every binary applies.
package migrations

import "embed"

// FS holds the goose migrations (NNNN_name.sql).
//
//go:embed *.sql
var FS embed.FS
