//go:build unix

package rest_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time this process has used, user and system:
// unlike wall time, other processes on the machine barely change it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
