// Package freeport names TCP ports on 127.0.0.1 for tests that must pass a
// port to a process before it listens: a redis-server, a gateway started by
// its command line, a backend restarted at the same address.
//
// A port taken from the kernel with ":0" and closed again comes from the
// ephemeral range, which every outgoing connection on the machine draws
// from too: a Redis client in another test package may take it before the
// process meant for it binds it. The ports named here lie below that range
// (read from /proc/sys/net/ipv4/ip_local_port_range), where the kernel
// never hands out a port on its own. They are picked at random, so that
// test binaries running side by side rarely pick the same one, and one
// process never names the same port twice.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the lowest port named, above the ports that services on a
// developer's machine tend to use.
const lowest = 20000

// named are the ports this process has named: it names none twice, so
// that two processes a test starts side by side never get the same one.
var named struct {
	sync.Mutex
	ports map[int]bool
}

// Addr returns "127.0.0.1:port" for a port free now, outside the
// kernel's ephemeral range.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// Port returns a port free on 127.0.0.1, outside the kernel's ephemeral
// range; with offsets, one whose port+offset is free too (a Redis Cluster
// node's bus port is port+10000).
func Port(t testing.TB, offsets ...int) int {
	t.Helper()
	port, err := Pick(offsets...)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Pick is [Port] for programs that are not tests, such as a load harness
// that starts the processes it measures.
func Pick(offsets ...int) (int, error) {
	span := 0
	for _, o := range offsets {
		span = max(span, o)
	}
	ephemeral := ephemeralStart()
	for range 200 {
		var port int
		if top := ephemeral - span; top > lowest {
			port = lowest + rand.IntN(top-lowest)
		} else if port = kernelPort(); port == 0 || port+span > 65535 {
			continue
		}
		if claim(port, offsets) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("freeport: no free port on 127.0.0.1 with offsets %v", offsets)
}

// claim names port and every port+offset, if this process has named none
// of them before and all can be listened on now.
func claim(port int, offsets []int) bool {
	named.Lock()
	defer named.Unlock()
	if named.ports == nil {
		named.ports = make(map[int]bool)
	}
	all := append([]int{port}, offsets...)
	for i := 1; i < len(all); i++ {
		all[i] += port
	}
	for _, p := range all {
		if named.ports[p] {
			return false
		}
	}
	if !free(port, offsets) {
		return false
	}
	for _, p := range all {
		named.ports[p] = true
	}
	return true
}

// free reports whether port and every port+offset can be listened on now.
func free(port int, offsets []int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	defer ln.Close()
	for _, o := range offsets {
		other, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+o)))
		if err != nil {
			return false
		}
		defer other.Close()
	}
	return true
}

// kernelPort returns a port the kernel picks, for a machine whose
// ephemeral range leaves no room below it.
func kernelPort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ephemeralStart returns the first port of the kernel's ephemeral range,
// or 32768, Linux's default, where the range cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}
