package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/opsmantik/opsmantik/pkg/deploy"
	"github.com/opsmantik/opsmantik/pkg/lambdatest"
)

// BenchmarkColdStart reports, for every function, the size of the zip
// `make package` ships (linux/arm64) and its init time: from process start
// to the first invocation/next request, with the function's real
// configuration, on this machine's architecture. Each iteration is one cold
// start; run with -benchtime=Nx for N starts. Targets: zip < 10 MB, init < 50 ms.
func BenchmarkColdStart(b *testing.B) {
	root := moduleRoot(b)
	names, err := deploy.Functions(root)
	if err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	artifacts, err := deploy.Artifacts(context.Background(), root, filepath.Join(tmp, "dist"))
	if err != nil {
		b.Fatal(err)
	}
	bins := filepath.Join(tmp, "bin")
	if err := deploy.BuildBootstraps(context.Background(), root, runtime.GOARCH, bins, names); err != nil {
		b.Fatal(err)
	}
	cases := functionCases()
	summary := map[string]string{} // the last run of each function wins
	defer func() {
		for _, a := range artifacts {
			if line, ok := summary[a.Function]; ok {
				fmt.Fprintln(os.Stdout, line)
			}
		}
	}()
	for _, a := range artifacts {
		c, ok := cases[a.Function]
		if !ok {
			b.Errorf("functions/%s has no case in functionCases", a.Function)
			continue
		}
		bin := filepath.Join(bins, a.Function, "bootstrap")
		b.Run(a.Function, func(b *testing.B) {
			env, _ := c.setup(b)
			inits := make([]time.Duration, 0, b.N)
			for range b.N {
				inits = append(inits, coldStart(b, bin, a.Function, env))
			}
			slices.Sort(inits)
			median := inits[len(inits)/2]
			if len(inits)%2 == 0 {
				median = (inits[len(inits)/2-1] + inits[len(inits)/2]) / 2
			}
			zipMB := float64(a.Size) / (1 << 20)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(median.Microseconds())/1000, "init-ms-median")
			b.ReportMetric(zipMB, "zip-MB")
			summary[a.Function] = fmt.Sprintf("cold start %-18s zip %5.2f MB (target < 10)   init median %5.1f ms over %d starts, min %5.1f, max %5.1f (target < 50)",
				a.Function, zipMB, ms(median), len(inits), ms(inits[0]), ms(inits[len(inits)-1]))
		})
	}
}

// coldStart starts a fresh process and returns its init time.
func coldStart(b *testing.B, bin, name string, env map[string]string) time.Duration {
	f, err := lambdatest.Start(lambdatest.Options{Binary: bin, Name: name, Env: env})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := f.WaitReady(ctx)
	if err != nil {
		b.Fatalf("%s did not start: %v", name, err)
	}
	return d
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
