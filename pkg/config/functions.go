package config

import (
	"reflect"
	"sort"
	"strings"
)

// Functions maps each folder under functions/ to the zero value of the
// configuration struct its main.go loads. serverless.yml gives each function
// exactly the variables EnvNames finds in its struct, and a test in
// pkg/deploy holds the two (and the folder list) together: add a function
// here when you add its folder.
func Functions() map[string]any {
	return map[string]any{
		"sync":              Sync{},
		"watchtower-cron":   Watchtower{},
		"test-notification": TestNotification{},
		"stats":             Stats{},
		"audit-integrity":   Audit{},
		"sync-google-ads":   SyncGoogleAds{},
	}
}

// EnvVar is one environment variable a configuration struct reads.
type EnvVar struct {
	Name       string
	Default    string // the tag's default=…, when HasDefault
	HasDefault bool
	Required   bool
}

// EnvNames lists, sorted, the environment variables that go-envconfig reads
// into a struct like cfg.
func EnvNames(cfg any) []string {
	vars := EnvVars(cfg)
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
	}
	return names
}

// EnvVars describes, sorted by name, the environment variables that
// go-envconfig reads into a struct like cfg: every field tagged
// `env:"NAME,..."`, and the fields of untagged (or prefix-only) nested
// structs, with their prefix.
func EnvVars(cfg any) []EnvVar {
	t := reflect.TypeOf(cfg)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var vars []EnvVar
	if t != nil && t.Kind() == reflect.Struct {
		collectEnvVars(t, "", &vars)
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	return vars
}

func collectEnvVars(t reflect.Type, prefix string, vars *[]EnvVar) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		name = strings.TrimSpace(name)
		if name != "" {
			v := EnvVar{Name: prefix + name}
			// go-envconfig's options are comma-separated and default= comes
			// last when present, since its value may itself hold commas.
			if before, def, ok := strings.Cut(opts, "default="); ok {
				v.Default, v.HasDefault = def, true
				opts = before
			}
			for opt := range strings.SplitSeq(opts, ",") {
				if strings.TrimSpace(opt) == "required" {
					v.Required = true
				}
			}
			*vars = append(*vars, v)
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.Struct {
			continue
		}
		nested := prefix
		for opt := range strings.SplitSeq(opts, ",") {
			if p, ok := strings.CutPrefix(strings.TrimSpace(opt), "prefix="); ok {
				nested += p
			}
		}
		collectEnvVars(ft, nested, vars)
	}
}
