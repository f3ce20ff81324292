package config

import (
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// lastLookup remembers the last variable go-envconfig asked for. go-envconfig
// reads fields one at a time and stops at the first bad one, so when it fails
// that variable is the culprit; its own message names only the Go field
// ("Database: MaxConns: strconv.ParseInt: ..."), not DB_MAX_CONNS.
type lastLookup struct {
	l    envconfig.Lookuper
	name string
}

func (r *lastLookup) Lookup(key string) (string, bool) {
	r.name = key
	return r.l.Lookup(key)
}

// explain returns err on one line, led by the variable at fault unless the
// message already names it ("missing required value: VAR").
func (r *lastLookup) explain(err error) string {
	msg := oneLine(err)
	if r.name == "" || strings.Contains(msg, r.name) {
		return msg
	}
	return r.name + ": " + msg
}
