package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/bench"
)

// bench backlog --server (issue 11): the backlog through a chute serve
// process on 127.0.0.1 with its defaults — the server's resident memory
// while it fills and while it drains, the drain rate, and how soon the
// data directory is back to two segments after the last ack.

// backlogThroughServer fills a queue of a new chute serve process with n
// messages of size bytes through the Go client's Producer (default
// settings), drains it with one consumer receiving and acking up to 1,000
// at a time, and prints what it measured.
func backlogThroughServer(ctx context.Context, out io.Writer, root string, n, size int, sync string) error {
	dir := filepath.Join(root, "served")
	c, _, pid, stop, err := servedBench(ctx, dir, sync)
	if err != nil {
		return err
	}
	defer stop()
	proc := strconv.Itoa(pid)
	base, err := peakRSS(proc)
	if err != nil {
		return err
	}

	start := time.Now()
	p := client.NewProducer(c, "bench", client.ProducerOptions{})
	body := make([]byte, size)
	for range n {
		if _, err := p.Publish(ctx, chute.Message{Body: body}); err != nil {
			return err
		}
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	if err := p.Close(ctx); err != nil {
		return err
	}
	filled := time.Since(start)
	fillPeak, err := peakRSS(proc)
	if err != nil {
		return err
	}
	segsFull := segmentFiles(dir)

	start = time.Now()
	drained := 0
	for drained < n {
		ds, err := c.Receive(ctx, "bench", chute.ReceiveOptions{Max: 1000, Wait: time.Second})
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return fmt.Errorf("drained %d of %d: the queue gave nothing for a second", drained, n)
		}
		rs := make([]string, len(ds))
		for i, d := range ds {
			rs[i] = d.Receipt
		}
		if err := c.Ack(ctx, "bench", rs...); err != nil {
			return err
		}
		drained += len(ds)
	}
	lastAck := time.Now()
	drain := lastAck.Sub(start)
	drainPeak, err := peakRSS(proc)
	if err != nil {
		return err
	}
	var back time.Duration = -1
	for time.Since(lastAck) < 30*time.Second {
		if segmentFiles(dir) <= 2 {
			back = time.Since(lastAck)
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the directory: nothing to wait on
	}
	fmt.Fprintf(out, "server: %d × %dB through chute serve (sync=%s): filled in %v (%.0f/s), drained in %v (%.0f/s)\n",
		n, size, sync, filled.Round(time.Millisecond), float64(n)/filled.Seconds(), drain.Round(time.Millisecond), float64(n)/drain.Seconds())
	fmt.Fprintf(out, "server: resident memory %d MB at start, peak %d MB while filling, peak %d MB while draining\n",
		base>>20, fillPeak>>20, drainPeak>>20)
	if back < 0 {
		fmt.Fprintf(out, "server: data directory still %d segments 30 s after the last ack (%d when full)\n", segmentFiles(dir), segsFull)
	} else {
		fmt.Fprintf(out, "server: data directory back to %d segments %v after the last ack (%d when full), %d MB on disk\n",
			segmentFiles(dir), back.Round(time.Millisecond), segsFull, dirBytes(dir)>>20)
	}
	return nil
}

// segmentFiles counts the journal segment files in dir.
func segmentFiles(dir string) int {
	es, _ := os.ReadDir(dir)
	n := 0
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".seg") {
			n++
		}
	}
	return n
}

// dirBytes is the size of the files in dir.
func dirBytes(dir string) int64 {
	es, _ := os.ReadDir(dir)
	var n int64
	for _, e := range es {
		if fi, err := e.Info(); err == nil && !fi.IsDir() {
			n += fi.Size()
		}
	}
	return n
}

// peakRSS returns the process's peak resident memory (VmHWM) since it
// started or since the last call, and resets the peak (Linux: "5" in
// /proc/PID/clear_refs), so that each phase reports its own.
func peakRSS(pid string) (int64, error) {
	_, peak, err := bench.ProcessRSS(pid)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("reset the peak memory of process %s: %w", pid, err)
	}
	return peak, nil
}
