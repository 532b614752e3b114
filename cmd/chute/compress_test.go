package main

import (
	"regexp"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/server"
)

// TestQueueCompressionFlags: --compression and --compress-min set a
// queue's compression at rest, update changes them, queue stat shows
// them, and bad values are usage errors.
func TestQueueCompressionFlags(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "z", "--compression", "zstd", "--compress-min", "4KiB")
	if c := s.stats("z").Config; c.Compression != chute.CompressionZstd || c.CompressMin != 4096 {
		t.Fatalf("created: compression %v, min %d", c.Compression, c.CompressMin)
	}
	out := s.must("queue", "stat", "z")
	for _, re := range []string{`compression\s+zstd`, `compress-min\s+4\.0 KiB \(4096 bytes\)`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("queue stat does not match %s:\n%s", re, out)
		}
	}
	s.must("queue", "update", "z", "--compress-min", "none")
	if c := s.stats("z").Config; c.Compression != chute.CompressionZstd || c.CompressMin != chute.None {
		t.Fatalf("after --compress-min none: compression %v, min %d", c.Compression, c.CompressMin)
	}
	if out := s.must("queue", "stat", "z"); !regexp.MustCompile(`compress-min\s+none \(every body\)`).MatchString(out) {
		t.Errorf("queue stat after --compress-min none:\n%s", out)
	}
	s.must("queue", "update", "z", "--compression", "none", "--compress-min", "0")
	if c := s.stats("z").Config; c.Compression != chute.CompressionNone || c.CompressMin != chute.DefaultCompressMin {
		t.Fatalf("after --compression none: compression %v, min %d", c.Compression, c.CompressMin)
	}
	s.wantExit(2, "queue", "update", "z", "--compression", "gzip")
	s.wantExit(2, "queue", "update", "z", "--compress-min", "lots")
	s.wantExit(5, "queue", "update", "z", "--compress-min", "1GiB") // above 64 MiB: the broker refuses it
}
