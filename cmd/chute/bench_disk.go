package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/internal/vfs"
)

// bench disk: the sync latency the disk under the data directory gives,
// measured the way the journal syncs (issue 11): what a delivery at
// --sync always waits for at least once, and the floor of any durable
// broker's confirm latency on this machine.

// diskResult is what bench disk prints with --json.
type diskResult struct {
	Dir       string  `json:"dir"`
	Size      int     `json:"write_bytes"`
	Syncs     int     `json:"syncs"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	AvgMs     float64 `json:"avg_ms"`
	PerSecond float64 `json:"syncs_per_second"`
}

func newBenchDiskCmd() *cobra.Command {
	var data string
	var size int
	var duration time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "disk",
		Short: "The disk's sync latency (write, then fdatasync; p50, p90, p99, max), as the journal syncs",
		Long: `disk writes --size bytes at the end of a preallocated file in a new
directory under --data (default: the system's temporary directory) and
syncs it, one after the other, for --duration, with the sync the journal
uses (fdatasync on Linux, F_FULLFSYNC on macOS, FlushFileBuffers on
Windows), and prints the sync latency: the time a durable confirm waits at
least once, whatever the broker. Measure on the disk that holds the data
directory (--data), beside a broker benchmark, to know how far a broker's
latency is from the disk's own.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 1 || size > 1<<20 || duration <= 0 {
				return usageError{fmt.Errorf("want 1 ≤ --size ≤ 1 MiB and a --duration > 0")}
			}
			root := data
			if root == "" {
				root = os.TempDir()
			}
			dir, err := os.MkdirTemp(root, "chute-bench-disk-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			res, err := measureDiskSync(dir, size, duration)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(out, "# %s/%s, %d-byte writes, each synced, for %v in %s\n", runtime.GOOS, runtime.GOARCH, size, duration, root)
			fmt.Fprintf(out, "syncs %d (%.0f/s)  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  avg %.3f ms\n",
				res.Syncs, res.PerSecond, res.P50ms, res.P90ms, res.P99ms, res.MaxMs, res.AvgMs)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "measure the disk of this directory (default: the system's temporary directory)")
	cmd.Flags().IntVar(&size, "size", 4096, "bytes written before each sync")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to measure")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// measureDiskSync appends size bytes and syncs, again and again for d, in
// a preallocated file in dir, and summarises the sync latencies.
func measureDiskSync(dir string, size int, d time.Duration) (diskResult, error) {
	const fileSize = 64 << 20
	f, err := vfs.OS.Create(filepath.Join(dir, "sync-test"))
	if err != nil {
		return diskResult{}, err
	}
	defer f.Close()
	_ = f.Preallocate(fileSize) // as the journal does; best effort there too
	if err := f.Sync(); err != nil {
		return diskResult{}, err
	}
	buf := make([]byte, size)
	var lats []time.Duration // every sync: exact percentiles (a few thousand a second)
	var off int64
	start := time.Now()
	for len(lats) == 0 || time.Since(start) < d {
		if off+int64(size) > fileSize {
			off = 0
		}
		buf[0]++ // not all zeros twice in a row
		if _, err := f.WriteAt(buf, off); err != nil {
			return diskResult{}, err
		}
		off += int64(size)
		t := time.Now()
		if err := f.Sync(); err != nil {
			return diskResult{}, err
		}
		lats = append(lats, time.Since(t))
	}
	elapsed := time.Since(start)
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	n := len(lats)
	at := func(q float64) float64 { return ms(lats[min(n-1, int(q*float64(n)))]) }
	return diskResult{Dir: dir, Size: size, Syncs: n, P50ms: at(0.5), P90ms: at(0.9), P99ms: at(0.99),
		MaxMs: ms(lats[n-1]), AvgMs: ms(sum / time.Duration(n)), PerSecond: float64(n) / elapsed.Seconds()}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
