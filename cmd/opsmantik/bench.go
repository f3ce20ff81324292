package main

import (
	"context"
	"fmt"
)

func runBench(ctx context.Context, args []string) error {
	return fmt.Errorf("not yet")
}
