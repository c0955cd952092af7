package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		port := Port(t, 10000)
		if port >= ephemeralStart()-10000 || port < lowest {
			t.Fatalf("port %d with offset 10000: want it in [%d, %d)", port, lowest, ephemeralStart()-10000)
		}
		for _, p := range []int{port, port + 10000} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d is not free: %v", p, err)
			}
			ln.Close()
		}
	}
}

func TestPortSkipsATakenOne(t *testing.T) {
	// Hold many ports of the range; Pick must never return one of them.
	held := map[int]bool{}
	for range 200 {
		port := Port(t)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("Port returned %d, which is taken: %v", port, err)
		}
		defer ln.Close()
		if held[port] {
			t.Fatalf("Port returned %d twice while it was held", port)
		}
		held[port] = true
	}
}

func TestPortNeverNamedTwice(t *testing.T) {
	// Ports named and released at once: none may come back, or two
	// processes a test starts side by side could be given the same.
	seen := map[int]bool{}
	for range 2000 {
		port := Port(t)
		if seen[port] {
			t.Fatalf("Port named %d twice", port)
		}
		seen[port] = true
	}
}
