//go:build unix

package ratelimit_test

import (
	"syscall"
	"testing"
)

// processCPU returns the CPU time the process has used, user and system,
// in nanoseconds. Per decision, it tells the cost of a decision apart from
// the time other processes took the CPUs, which ns/op includes.
func processCPU(b *testing.B) int64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatal(err)
	}
	return usage.Utime.Nano() + usage.Stime.Nano()
}
