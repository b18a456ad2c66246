//go:build !linux

package localddb

import (
	"os"
	"os/exec"
)

func setProcAttrs(cmd *exec.Cmd, group bool) {}

func terminate(cmd *exec.Cmd, group bool) { _ = cmd.Process.Signal(os.Interrupt) }

func kill(cmd *exec.Cmd, group bool) { _ = cmd.Process.Kill() }
