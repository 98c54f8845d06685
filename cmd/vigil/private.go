package main

import (
	"fmt"
	"os"
	"syscall"
)

// createPrivate opens name for writing, truncated, private to Vigil's
// user (0600), for files that hold personal data (exports, ISP
// requests). O_CREATE's mode applies only to a new file: one that already
// exists keeps its own (a 0644 file from before, or one another local
// user made 0666 in a shared folder, waiting for it), so the mode is set
// on the open file too; a file this user does not own cannot be made
// private and is refused. A symbolic link is not followed.
func createPrivate(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: cannot make it private to this user: %w", name, err)
	}
	return f, nil
}
