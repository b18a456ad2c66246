package ddbtest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the engine exit when the test binary dies, even when
// it is killed (go test -timeout, fuzz workers), so no engine outlives it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
