//go:build !unix

package ratelimit_test

import "testing"

// processCPU is not measured on this system: cpu-ns/op reads 0.
func processCPU(*testing.B) int64 { return 0 }
