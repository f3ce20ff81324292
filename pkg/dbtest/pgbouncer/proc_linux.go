package pgbouncer

import (
	"os/user"
	"syscall"
)

// sysProcAttr runs PgBouncer as runAs (when not nil) and has the kernel stop
// it when this process dies, so that a crashed or killed test binary leaves
// no PgBouncer behind. The credentials are set before the death signal, so
// the switch of user does not clear it.
func sysProcAttr(runAs *user.User) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if runAs != nil {
		uid, gid, err := ids(runAs)
		if err != nil {
			return nil, err
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return attr, nil
}
