package deploy_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/config"
	"github.com/opsmantik/opsmantik/pkg/deploy"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
)

// TestBootstrapsUnderRuntimeAPI builds every function as `make package`
// does, but for this machine's architecture, and runs each binary the way
// Lambda runs it: against the Runtime API, with only its own environment.
func TestBootstrapsUnderRuntimeAPI(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	names, err := deploy.Functions(root)
	if err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	if err := deploy.BuildBootstraps(context.Background(), root, runtime.GOARCH, bins, names); err != nil {
		t.Fatal(err)
	}
	cases := functionCases()
	for _, name := range names {
		c, ok := cases[name]
		if !ok {
			t.Errorf("functions/%s has no case in functionCases (pkg/deploy/functions_test.go): say how to invoke it", name)
			continue
		}
		bin := filepath.Join(bins, name, "bootstrap")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("answers its event", func(t *testing.T) {
				env, check := c.setup(t)
				f := start(t, bin, name, env)
				check(t, f)
			})
			t.Run("reports a malformed variable as init error", func(t *testing.T) {
				env, _ := c.setup(t)
				testInitError(t, bin, name, env)
			})
		})
	}
}

func start(t *testing.T, bin, name string, env map[string]string) *lambdatest.Function {
	t.Helper()
	f, err := lambdatest.Start(lambdatest.Options{Binary: bin, Name: name, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := f.WaitReady(ctx); err != nil {
		t.Fatalf("%s did not start: %v\noutput:\n%s", name, err, f.Logs())
	}
	return f
}

// testInitError breaks one variable of a working configuration: the binary
// must report an init error through the Runtime API naming the variable,
// exit, and print no secret.
func testInitError(t *testing.T, bin, name string, env map[string]string) {
	vars := config.EnvNames(config.Functions()[name])
	broken, value := "LOG_LEVEL", "loud"
	if slices.Contains(vars, "DB_MAX_CONNS") {
		broken, value = "DB_MAX_CONNS", "abc"
	}
	if !slices.Contains(vars, broken) {
		t.Fatalf("%s reads neither DB_MAX_CONNS nor LOG_LEVEL; give this test a variable to break", name)
	}
	env[broken] = value
	f, err := lambdatest.Start(lambdatest.Options{Binary: bin, Name: name, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = f.WaitReady(ctx)
	var initErr *lambdatest.InitError
	if !errors.As(err, &initErr) {
		t.Fatalf("%s=%s: WaitReady = %v, want an init error through the Runtime API\noutput:\n%s", broken, value, err, f.Logs())
	}
	if !strings.Contains(initErr.Report.Message, broken) {
		t.Errorf("init error %q does not name %s", initErr.Report.Message, broken)
	}
	if initErr.Report.Header != "Runtime.InitError" || initErr.Report.Type == "" {
		t.Errorf("init error type %q, header %q; want a type and header Runtime.InitError", initErr.Report.Type, initErr.Report.Header)
	}
	select {
	case <-f.Exited():
		if f.ExitErr() == nil {
			t.Error("the process exited with status 0 after a failed start")
		}
	case <-ctx.Done():
		t.Error("the process kept running after reporting its init error")
	}
	logs := f.Logs()
	if !strings.Contains(logs, broken) || strings.Contains(strings.TrimSpace(logs), "\n") {
		t.Errorf("output should be one line naming %s, got:\n%s", broken, logs)
	}
	for k, v := range env {
		if secret(k) && v != "" && strings.Contains(logs, v) {
			t.Errorf("output shows the value of %s", k)
		}
	}
}

func secret(name string) bool {
	return name == "DATABASE_URL" || strings.Contains(name, "TOKEN") || strings.Contains(name, "SECRET") || strings.Contains(name, "PASSWORD")
}
