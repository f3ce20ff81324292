package config

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

func TestEnvNamesFollowsNestedStructsAndPrefixes(t *testing.T) {
	type inner struct {
		Token string `env:"TOKEN, required"`
	}
	type cfg struct {
		Database Database
		Chat     inner  `env:", prefix=CHAT_"`
		Ptr      *inner `env:",prefix=PTR_"`
		Plain    string `env:"PLAIN"`
		ignored  string `env:"IGNORED"` //nolint:unused // proves unexported fields are skipped
		NoTag    int
	}
	got := EnvNames(&cfg{})
	want := []string{"CHAT_TOKEN", "DATABASE_URL", "DB_MAX_CONNS", "PLAIN", "PTR_TOKEN"}
	if !slices.Equal(got, want) {
		t.Fatalf("EnvNames = %v, want %v", got, want)
	}
}

func TestEnvVarsReadsDefaultsAndRequired(t *testing.T) {
	type cfg struct {
		A string `env:"A, required"`
		B string `env:"B, default=x,y"`
		C int    `env:"C"`
	}
	got := EnvVars(cfg{})
	want := []EnvVar{{Name: "A", Required: true}, {Name: "B", Default: "x,y", HasDefault: true}, {Name: "C"}}
	if !slices.Equal(got, want) {
		t.Fatalf("EnvVars = %+v, want %+v", got, want)
	}
}

func TestEveryFunctionConfigReadsVariables(t *testing.T) {
	for name, cfg := range Functions() {
		if len(EnvNames(cfg)) == 0 {
			t.Errorf("function %s: its configuration struct %T reads no environment variables", name, cfg)
		}
	}
}

func TestLoadNamesTheMalformedVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"DB_MAX_CONNS": "abc"}, "DB_MAX_CONNS"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
	}
	for _, c := range cases {
		var cfg Sync
		err := LoadFrom(context.Background(), envconfig.MapLookuper(c.env), &cfg)
		if err == nil || !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v: error %q should name %s on one line", c.env, err, c.name)
		}
	}
}
