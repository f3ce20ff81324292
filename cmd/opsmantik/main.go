// Command opsmantik is the operator's command line: the local stack, migrations,
// sites, jobs, the traffic simulator and the benchmark.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: its one-line help and what it runs.
type command struct {
	help string
	run  func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"dev":      {"run the whole stack locally on OPSMANTIK_ADDR (default 127.0.0.1:8080)", runDev},
		"migrate":  {"apply migrations to DATABASE_URL", runMigrate},
		"site":     {"manage sites: site add --public-id ID --domain D [...] | site list | site set --public-id ID [...]", runSite},
		"run":      {"run a scheduled job once: run <job>", runJob},
		"simulate": {"play realistic visits through the HTTP API: simulate --url URL --visitors N [--concurrency C]", runSimulate},
		"bench":    {"print the benchmark figures", runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := commands()
	if len(os.Args) < 2 {
		usage(cmds)
		os.Exit(2)
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "opsmantik: unknown command %q\n", os.Args[1])
		usage(cmds)
		os.Exit(2)
	}
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "opsmantik %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: opsmantik <command> [flags]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", n, cmds[n].help)
	}
}
