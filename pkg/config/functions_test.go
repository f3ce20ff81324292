package config

import (
	"context"
	"log/slog"
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
		{map[string]string{"DATABASE_URL": "postgres://db/x", "DB_MAX_CONNS": "abc"}, "DB_MAX_CONNS"},
		{map[string]string{"DATABASE_URL": "postgres://db/x", "DB_MAX_CONNS": "0"}, "DB_MAX_CONNS"},
		{map[string]string{"DATABASE_URL": "postgres://db/x", "DB_MAX_CONNS": "-3"}, "DB_MAX_CONNS"},
		{map[string]string{"DATABASE_URL": "postgres://db/x", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		// A deployed function has no local server to fall back on.
		{map[string]string{}, "DATABASE_URL"},
	}
	for _, c := range cases {
		var cfg Sync
		err := LoadFrom(context.Background(), envconfig.MapLookuper(c.env), &cfg)
		if err == nil || !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v: error %q should name %s on one line", c.env, err, c.name)
		}
	}
}

func TestLocalCommandsDefaultToTheLocalServer(t *testing.T) {
	var cfg CLI
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(nil), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Database.URL != DefaultDatabaseURL || cfg.Database.MaxConns != 4 {
		t.Fatalf("%+v", cfg.Database)
	}
	var jobs Jobs
	if err := LoadFrom(context.Background(), envconfig.MapLookuper(map[string]string{"DB_MAX_CONNS": "0"}), &jobs); err == nil || !strings.Contains(err.Error(), "DB_MAX_CONNS") {
		t.Fatalf("DB_MAX_CONNS=0 for a job: %v", err)
	}
}

func TestDatabaseURLIsNeverLogged(t *testing.T) {
	var b strings.Builder
	logger := slog.New(slog.NewJSONHandler(&b, nil))
	d := Database{URL: "postgres://app:s3cret-pw@db.example:6543/opsmantik?sslmode=require", MaxConns: 2}
	logger.Info("start", "database", d, "local", LocalDatabase(d))
	if strings.Contains(b.String(), "s3cret-pw") || !strings.Contains(b.String(), "db.example:6543") {
		t.Fatalf("log line: %s", b.String())
	}
}
