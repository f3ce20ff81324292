package main

import (
	"context"
	"fmt"
)

func runJob(ctx context.Context, args []string) error {
	return fmt.Errorf("no jobs yet")
}
