package localddb

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes the engine exit when its parent dies, even when it is
// killed (go test -timeout, fuzz workers, a killed make dev), so no engine
// outlives it; group puts the engine in its own process group.
func setProcAttrs(cmd *exec.Cmd, group bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGKILL}
}

// terminate sends SIGTERM to the engine (and its process group).
func terminate(cmd *exec.Cmd, group bool) { signal(cmd, group, syscall.SIGTERM) }

// kill sends SIGKILL to the engine (and its process group).
func kill(cmd *exec.Cmd, group bool) { signal(cmd, group, syscall.SIGKILL) }

func signal(cmd *exec.Cmd, group bool, sig syscall.Signal) {
	pid := cmd.Process.Pid
	if group && pid > 0 {
		_ = syscall.Kill(-pid, sig)
	}
	_ = cmd.Process.Signal(sig)
}
