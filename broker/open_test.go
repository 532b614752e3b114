package broker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chutemq/chute/broker"
)

// TestOpenBadDir: a directory that cannot be opened is an error, not a
// panic (issue 8: stats were read before the error was checked).
func TestOpenBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(file, nil)
	if err == nil {
		b.Close()
		t.Fatal("Open on a regular file succeeded")
	}
}
