package main

import (
	"context"
	"fmt"
)

func runSimulate(ctx context.Context, args []string) error {
	return fmt.Errorf("not yet")
}
