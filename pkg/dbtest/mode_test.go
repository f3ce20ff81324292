package dbtest

import "testing"

func TestPoolerModeAcceptsOnlyThePoolerSafeExecModes(t *testing.T) {
	for v, ok := range map[string]bool{
		"": true, "exec": true, "simple_protocol": true,
		"cache_statement": false, "cache_describe": false, "EXEC": false, "1": false, "yes": false,
	} {
		mode, err := parseMode(v)
		if ok != (err == nil) || (ok && mode != v) {
			t.Errorf("%q: mode %q, err %v", v, mode, err)
		}
	}
}
