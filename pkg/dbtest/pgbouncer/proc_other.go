//go:build !linux

package pgbouncer

import (
	"errors"
	"os/user"
	"syscall"
)

// sysProcAttr: switching users is only implemented for Linux, where the
// tests run as root in CI.
func sysProcAttr(runAs *user.User) (*syscall.SysProcAttr, error) {
	if runAs != nil {
		return nil, errors.New("pgbouncer: refuses to run as root; run the tests as another user")
	}
	return nil, nil
}
