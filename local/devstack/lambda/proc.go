package lambda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Child processes run in their own process group, and die with us if we
// are killed without a chance to clean up (Pdeathsig). The Lambda RIE puts
// the function's bootstrap in yet another process group, so stopping an
// instance kills the whole process tree found under /proc, not only a group.

func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Descendants returns the pids of every process below pid (tests use it
// to check that a stack leaves none behind).
func Descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Format: pid (comm) state ppid ...; comm may contain spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// killTree sends sig to pid's process group, to every descendant and to
// their process groups, and returns the descendants it signalled.
func killTree(pid int, sig syscall.Signal) []int {
	if pid <= 0 {
		return nil
	}
	desc := Descendants(pid)
	_ = syscall.Kill(-pid, sig)
	_ = syscall.Kill(pid, sig)
	for _, d := range desc {
		_ = syscall.Kill(d, sig)
		if pg, err := syscall.Getpgid(d); err == nil && pg == d {
			_ = syscall.Kill(-pg, sig)
		}
	}
	return desc
}

// waitGone waits until none of pids runs any more (gone, or a zombie
// nobody reaps), so that a stopped instance has left nothing behind.
// Bounded: at most about two seconds.
func waitGone(pids []int) {
	for _, pid := range pids {
		for i := 0; i < 200 && running(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}
