//go:build unix

package issuer

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path, creating it with mode
// 0600, so that two commands editing the registry at once do not lose an
// edit. The issuer itself never takes it: it only reads, and writes are
// atomic renames.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
