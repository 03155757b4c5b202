package netlab

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// EnterNS moves the calling OS thread into the named network namespace
// (/run/netns/NAME). The caller must have locked the goroutine to its
// thread (runtime.LockOSThread) and must never unlock it: the thread then
// ends with the goroutine instead of carrying the namespace to other code.
func EnterNS(name string) error {
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer func() { _ = f.Close() }()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", name, err)
	}
	return nil
}
