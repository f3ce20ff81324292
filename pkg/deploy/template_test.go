package deploy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opsmantik/opsmantik/dashboard"
	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/deploy"
	"github.com/opsmantik/opsmantik/tracker"
)

// stage is what the test packages; function names are service-stage-name.
const stage = "ci"

// lambdaDefaults are the deliberate differences between a default in
// serverless.yml and the struct's default (which serves `opsmantik dev`).
func lambdaDefaults() map[string]string {
	return map[string]string{
		// One Lambda instance serves one request at a time.
		"DB_MAX_CONNS": "2",
	}
}

// schedules are the expected EventBridge expressions of scheduled functions.
func schedules() map[string]string {
	return map[string]string{
		"watchtower-cron": "rate(15 minutes)",
		"audit-integrity": "cron(15 3 * * ? *)",
	}
}

// TestServerlessTemplate runs what `make package` runs — the artifacts,
// then `osls package`, offline and with no AWS credentials — and checks
// the CloudFormation template against the code: every folder under
// functions/ is a function with the runtime, architecture and handler Lambda
// needs, the URL or schedule its main.go asks for, and exactly the
// environment its configuration struct reads.
func TestServerlessTemplate(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	tmp := t.TempDir()
	dist := filepath.Join(tmp, "dist")
	artifacts, err := deploy.Artifacts(context.Background(), root, dist)
	if err != nil {
		t.Fatal(err)
	}
	serverlessYML, err := os.ReadFile(filepath.Join(root, "serverless.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\$\{(ssm|aws|cf|s3|sls):`).Find(serverlessYML); m != nil {
		t.Errorf("serverless.yml uses %s…}: packaging would need AWS credentials", m)
	}
	required := requiredEnv(serverlessYML)
	tpl := packageTemplate(t, root, dist, filepath.Join(tmp, "package"), required)

	names, err := deploy.Functions(root)
	if err != nil {
		t.Fatal(err)
	}
	configs := config.Functions()
	for name := range configs {
		if !slices.Contains(names, name) {
			t.Errorf("config.Functions has %q but functions/%s/main.go does not exist", name, name)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cfg, ok := configs[name]
			if !ok {
				t.Fatalf("functions/%s is missing from config.Functions (pkg/config/functions.go): map it to its configuration struct", name)
			}
			id, fn, ok := tpl.function("opsmantik-" + stage + "-" + name)
			if !ok {
				t.Fatalf("functions/%s is missing from serverless.yml", name)
			}
			if fn.Runtime != "provided.al2023" || fn.Handler != "bootstrap" || !slices.Equal(fn.Architectures, []string{"arm64"}) {
				t.Errorf("runtime %q, handler %q, architectures %v; want provided.al2023, bootstrap, [arm64]", fn.Runtime, fn.Handler, fn.Architectures)
			}
			if !strings.HasSuffix(fn.Code.S3Key, "/"+name+".zip") {
				t.Errorf("code %q is not the prebuilt %s.zip", fn.Code.S3Key, name)
			}
			if fn.Timeout == 0 || fn.MemorySize == 0 {
				t.Errorf("timeout %d s, memory %d MB: set both", fn.Timeout, fn.MemorySize)
			}
			if name == "sync" && fn.ReservedConcurrentExecutions != 50 {
				// The README's sizing rule: concurrency x DB_MAX_CONNS within
				// the database's connections; a parameter changes it.
				t.Errorf("sync reserved concurrency %d, want the default 50", fn.ReservedConcurrentExecutions)
			}
			if days := tpl.logRetention("/aws/lambda/opsmantik-" + stage + "-" + name); days <= 0 {
				t.Errorf("log group has no retention")
			}
			checkTrigger(t, root, name, id, tpl)
			checkEnv(t, cfg, fn.Environment.Variables, required)
			checkZip(t, filepath.Join(dist, name+".zip"))
		})
	}
	if len(artifacts) != len(names) {
		t.Errorf("%d zips for %d functions", len(artifacts), len(names))
	}
	want, err := tracker.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dist, deploy.TrackerFile)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("dist/%s is not the minified tracker (err %v)", deploy.TrackerFile, err)
	}
	if got, err := os.ReadFile(filepath.Join(dist, deploy.DashboardFile)); err != nil || !bytes.Equal(got, dashboard.Page()) {
		t.Errorf("dist/%s is not the dashboard page (err %v)", deploy.DashboardFile, err)
	}
}

// requiredEnv lists the variables serverless.yml reads with no default:
// packaging fails without them, so the test gives each a placeholder.
func requiredEnv(yml []byte) []string {
	var names []string
	for _, m := range regexp.MustCompile(`\$\{env:([A-Za-z0-9_]+)\}`).FindAllSubmatch(yml, -1) {
		if n := string(m[1]); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

func placeholder(name string) string { return "placeholder-" + strings.ToLower(name) }

// packageTemplate runs `osls package` into out with a clean environment:
// no AWS variables or credential files, only the required variables.
func packageTemplate(t *testing.T, root, dist, out string, required []string) template {
	t.Helper()
	env := []string{
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(out, "no-credentials"),
		"AWS_CONFIG_FILE=" + filepath.Join(out, "no-config"),
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for _, n := range required {
		env = append(env, n+"="+placeholder(n))
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "osls.sh"), "package",
		"--stage", stage, "--region", "eu-west-1", "--package", out, "--param", "dist="+dist)
	cmd.Dir = root
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("osls package: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(filepath.Join(out, "cloudformation-template-update-stack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

// checkTrigger: a function whose main.go starts lambdahost.HTTP has a public
// Function URL, with CORS unless its handler answers CORS itself or it is
// not for browsers; one that starts lambdahost.Schedule has an EventBridge
// schedule. Never both.
func checkTrigger(t *testing.T, root, name, id string, tpl template) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "functions", name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	url, hasURL := tpl.url(id)
	rule, hasRule := tpl.schedule(id)
	switch {
	case bytes.Contains(src, []byte("lambdahost.HTTP(")):
		if !hasURL {
			t.Fatalf("HTTP function without a Function URL (url: cors: … in serverless.yml)")
		}
		if url.AuthType != "NONE" {
			t.Errorf("Function URL auth %q, want NONE (public; the handler authenticates)", url.AuthType)
		}
		c, ok := functionCases()[name]
		switch {
		case !ok:
			t.Errorf("functions/%s has no case in functionCases: say whether its handler answers CORS", name)
		case c.noCORS && url.Cors != nil:
			t.Errorf("the endpoint is not for browsers, yet the Function URL has a CORS configuration (url: true in serverless.yml), got %+v", url.Cors)
		case c.noCORS:
		case c.corsByHandler && url.Cors != nil:
			t.Errorf("the handler answers CORS itself, yet the Function URL has a CORS configuration: browsers would get two Access-Control-Allow-Origin values (url: true in serverless.yml)")
		case !c.corsByHandler && (url.Cors == nil || len(url.Cors.AllowOrigins) == 0 || len(url.Cors.AllowMethods) == 0):
			t.Errorf("the handler sets no CORS headers, so the Function URL needs a CORS configuration (url: cors: … in serverless.yml), got %+v", url.Cors)
		}
		if hasRule {
			t.Errorf("HTTP function has a schedule (%s)", rule.ScheduleExpression)
		}
	case bytes.Contains(src, []byte("lambdahost.Schedule(")):
		if !hasRule {
			t.Fatalf("scheduled function without an EventBridge schedule (events: - schedule: in serverless.yml)")
		}
		if want, ok := schedules()[name]; ok && rule.ScheduleExpression != want {
			t.Errorf("schedule %q, want %q", rule.ScheduleExpression, want)
		}
		if !regexp.MustCompile(`^(rate\(\d+ (minute|hour|day)s?\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$`).MatchString(rule.ScheduleExpression) {
			t.Errorf("schedule %q is not a rate() or six-field cron() expression", rule.ScheduleExpression)
		}
		if rule.State == "DISABLED" {
			t.Errorf("schedule is disabled")
		}
		if hasURL {
			t.Errorf("scheduled function has a Function URL")
		}
	default:
		t.Fatalf("functions/%s/main.go starts neither lambdahost.HTTP nor lambdahost.Schedule", name)
	}
}

// checkEnv: the function's variables are exactly those its struct reads, and
// a default that serverless.yml supplies is the struct's default.
func checkEnv(t *testing.T, cfg any, got map[string]string, required []string) {
	t.Helper()
	vars := config.EnvVars(cfg)
	want := config.EnvNames(cfg)
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("environment in serverless.yml %v\n  configuration struct %T reads %v", names, cfg, want)
	}
	for _, v := range vars {
		value, ok := got[v.Name]
		if !ok || slices.Contains(required, v.Name) {
			continue
		}
		want, override := lambdaDefaults()[v.Name]
		if !override {
			if !v.HasDefault {
				continue
			}
			want = v.Default
		}
		if value != want {
			t.Errorf("serverless.yml's default for %s is %q, want %q", v.Name, value, want)
		}
	}
}

// checkZip: the zip holds one executable named bootstrap, a Linux arm64
// binary.
func checkZip(t *testing.T, path string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s: want exactly one executable named bootstrap", filepath.Base(path))
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF binary: %v", err)
	}
	if ef.Machine != elf.EM_AARCH64 || ef.OSABI != elf.ELFOSABI_NONE && ef.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("bootstrap is for %v (%v), want arm64 Linux", ef.Machine, ef.OSABI)
	}
	if interp := ef.Section(".interp"); interp != nil {
		t.Errorf("bootstrap is dynamically linked; build with CGO_ENABLED=0")
	}
}

// template is the part of a CloudFormation template the test reads.
type template struct {
	Resources map[string]struct {
		Type       string          `json:"Type"`
		Properties json.RawMessage `json:"Properties"`
	} `json:"Resources"`
}

type lambdaFunction struct {
	FunctionName  string   `json:"FunctionName"`
	Runtime       string   `json:"Runtime"`
	Handler       string   `json:"Handler"`
	Architectures []string `json:"Architectures"`
	MemorySize    int      `json:"MemorySize"`
	Timeout       int      `json:"Timeout"`
	// Reserved concurrency (sync only): bounds the database connections.
	ReservedConcurrentExecutions int `json:"ReservedConcurrentExecutions"`
	Code                         struct {
		S3Key string `json:"S3Key"`
	} `json:"Code"`
	Environment struct {
		Variables map[string]string `json:"Variables"`
	} `json:"Environment"`
}

// getAtt is {"Fn::GetAtt": [logicalID, "Arn"]}.
type getAtt struct {
	GetAtt []string `json:"Fn::GetAtt"`
}

func (g getAtt) targets(id string) bool { return len(g.GetAtt) == 2 && g.GetAtt[0] == id }

type functionURL struct {
	AuthType          string `json:"AuthType"`
	TargetFunctionArn getAtt `json:"TargetFunctionArn"`
	Cors              *struct {
		AllowOrigins []string `json:"AllowOrigins"`
		AllowMethods []string `json:"AllowMethods"`
	} `json:"Cors"`
}

type eventRule struct {
	ScheduleExpression string `json:"ScheduleExpression"`
	State              string `json:"State"`
	Targets            []struct {
		Arn getAtt `json:"Arn"`
	} `json:"Targets"`
}

func (tpl template) each(typ string, visit func(id string, props json.RawMessage) bool) {
	for id, r := range tpl.Resources {
		if r.Type == typ && !visit(id, r.Properties) {
			return
		}
	}
}

func (tpl template) function(name string) (id string, fn lambdaFunction, found bool) {
	tpl.each("AWS::Lambda::Function", func(rid string, props json.RawMessage) bool {
		var f lambdaFunction
		if json.Unmarshal(props, &f) == nil && f.FunctionName == name {
			id, fn, found = rid, f, true
			return false
		}
		return true
	})
	return id, fn, found
}

func (tpl template) url(functionID string) (u functionURL, found bool) {
	tpl.each("AWS::Lambda::Url", func(_ string, props json.RawMessage) bool {
		var v functionURL
		if json.Unmarshal(props, &v) == nil && v.TargetFunctionArn.targets(functionID) {
			u, found = v, true
			return false
		}
		return true
	})
	return u, found
}

func (tpl template) schedule(functionID string) (r eventRule, found bool) {
	tpl.each("AWS::Events::Rule", func(_ string, props json.RawMessage) bool {
		var v eventRule
		if json.Unmarshal(props, &v) != nil || v.ScheduleExpression == "" {
			return true
		}
		for _, target := range v.Targets {
			if target.Arn.targets(functionID) {
				r, found = v, true
				return false
			}
		}
		return true
	})
	return r, found
}

func (tpl template) logRetention(group string) (days int) {
	tpl.each("AWS::Logs::LogGroup", func(_ string, props json.RawMessage) bool {
		var v struct {
			LogGroupName    string `json:"LogGroupName"`
			RetentionInDays int    `json:"RetentionInDays"`
		}
		if json.Unmarshal(props, &v) == nil && v.LogGroupName == group {
			days = v.RetentionInDays
			return false
		}
		return true
	})
	return days
}
