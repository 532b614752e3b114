package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
)

func newJournalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Inspect and repair a journal directory offline (takes the directory's lock: the broker must not be running on it)",
	}
	cmd.AddCommand(newJournalVerifyCmd(), newJournalDumpCmd(), newJournalRepairCmd())
	return cmd
}

// errCorrupt is the sentinel that makes main exit with status 3 (see
// exitCode). It is chute.ErrJournalCorrupt itself, so that damage found by
// broker.Open (serve, demo) exits 3 as well as damage found here.
var errCorrupt = chute.ErrJournalCorrupt

// whatToDo is appended to every report of damage.
func whatToDo(dir string) string {
	return fmt.Sprintf("run `chute journal repair --dry-run %s` to see what would be lost, then `chute journal repair %s` to repair it (damaged files are moved to %s/quarantine, never deleted)",
		dir, dir, dir)
}

// damaged marks err (which matches errCorrupt) with what to do.
func damaged(dir string, err error) error {
	return fmt.Errorf("%w\n%s", err, whatToDo(dir))
}

// lockForRead takes dir's lock for verify and dump, or with force reads
// without it, warning that a running broker may be changing what is read.
func lockForRead(cmd *cobra.Command, dir string, force bool) (release func(), err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("journal directory: %w", err)
	}
	if force {
		fmt.Fprintf(cmd.ErrOrStderr(), "chute: warning: --force: reading %s without its lock; if a broker is running on it, the result may be torn or out of date\n", dir)
		return func() {}, nil
	}
	l, err := broker.LockDir(nil, dir)
	if err != nil {
		if errors.Is(err, broker.ErrLocked) {
			return nil, fmt.Errorf("%w (or pass --force to read it anyway, without writing)", err)
		}
		return nil, err
	}
	return func() { l.Close() }, nil
}

func newJournalVerifyCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every segment, record, message checksum and the checkpoint",
		Long: `verify reads every segment of the journal in DIR (also those before the
checkpoint, which Open does not read), checks each frame's checksum, decodes
each record and each message, restores the checkpoint and replays the records
after it. It changes nothing, and takes the directory's lock (--force reads
without it). Exit status: 0 sound, 3 damaged, 1 other error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			release, err := lockForRead(cmd, args[0], force)
			if err != nil {
				return err
			}
			defer release()
			return verifyJournal(cmd.OutOrStdout(), args[0])
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "read without the directory's lock (while a broker runs on it; the result may be torn)")
	return cmd
}

func verifyJournal(out io.Writer, dir string) error {
	var msgs int64
	rep, err := journal.Scan(nil, dir, func(pos uint64, payload []byte) error {
		r, err := engine.Decode(payload)
		if err != nil {
			return err
		}
		recs := []*engine.Record{r}
		if r.Type == engine.RecTx {
			recs = r.Parts // a transaction's publishes carry their messages
		}
		for _, r := range recs {
			for i, m := range r.Msgs {
				if r.Type != engine.RecPublish && r.Type != engine.RecBlobs {
					break
				}
				if _, _, _, _, err := engine.DecodeBlob(m.Blob); err != nil {
					return fmt.Errorf("message %d of the record at %x: %w", i, pos, err)
				}
				msgs++
			}
		}
		return nil
	})
	if err != nil {
		var ce *journal.CorruptionError
		if errors.As(err, &ce) {
			fmt.Fprintf(out, "DAMAGED: %s at offset %d: %s\n%s\n", ce.File, ce.Offset, ce.Reason, whatToDo(dir))
			return damaged(dir, err)
		}
		return err
	}
	fmt.Fprintf(out, "segments: %d, records: %d (%d bytes), messages checked: %d\n", rep.Segments, rep.Records, rep.Bytes, msgs)
	if rep.TornTail != nil {
		fmt.Fprintf(out, "torn tail (cut on next open, never confirmed): %s at offset %d: %s\n", rep.TornTail.File, rep.TornTail.Offset, rep.TornTail.Reason)
	}
	// The state recovery would build: checkpoint, then the records after it.
	from, snap, err := journal.ReadCheckpoint(nil, dir)
	if err != nil {
		fmt.Fprintf(out, "DAMAGED: checkpoint: %v\n%s\n", err, whatToDo(dir))
		return damaged(dir, err)
	}
	e := engine.New()
	if snap != nil {
		if e, err = engine.Restore(snap); err != nil {
			fmt.Fprintf(out, "DAMAGED: checkpoint at %x: %v\n%s\n", from, err, whatToDo(dir))
			return damaged(dir, fmt.Errorf("%w: checkpoint at %x: %w", errCorrupt, from, err))
		}
		fmt.Fprintf(out, "checkpoint at %x: %d bytes\n", from, len(snap))
	}
	var replayed int64
	_, err = journal.Scan(nil, dir, func(pos uint64, payload []byte) error {
		if pos < from {
			return nil
		}
		r, err := engine.Decode(payload)
		if err == nil {
			err = e.Apply(r, pos)
		}
		replayed++
		return err
	})
	if err != nil {
		fmt.Fprintf(out, "DAMAGED: replay: %v\n%s\n", err, whatToDo(dir))
		return damaged(dir, err)
	}
	qs := e.Queues()
	var depth int64
	for _, q := range qs {
		depth += q.Ready + q.Delayed + q.InFlight
	}
	fmt.Fprintf(out, "replayed %d records after the checkpoint: %d queues, %d topics, %d messages queued\nOK\n",
		replayed, len(qs), len(e.Topics()), depth)
	return nil
}

func newJournalDumpCmd() *cobra.Command {
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:   "dump DIR",
		Short: "Print every record of the journal",
		Long: `dump prints every record of the journal in DIR, in order. It takes the
directory's lock (--force reads without it). Exit status 3 if it meets damage.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			release, err := lockForRead(cmd, args[0], force)
			if err != nil {
				return err
			}
			defer release()
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			_, err = journal.Scan(nil, args[0], func(pos uint64, payload []byte) error {
				r, err := engine.Decode(payload)
				if err != nil {
					return err
				}
				line := dumpLine(pos, r)
				if asJSON {
					return enc.Encode(line)
				}
				fmt.Fprintln(out, line.text())
				return nil
			})
			if errors.Is(err, errCorrupt) {
				return damaged(args[0], err)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per record")
	cmd.Flags().BoolVar(&force, "force", false, "read without the directory's lock (while a broker runs on it; the result may be torn)")
	return cmd
}

func newJournalRepairCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "repair DIR",
		Short: "Rebuild a damaged journal, keeping every intact record, and say what was lost",
		Long: `repair reads every segment of the journal in DIR, keeps every intact record
(also those after a damaged region, when the frame scan finds the next intact
frame), rebuilds the state from the checkpoint and those records, and lists
exactly which queued messages (queue, sequence) were lost. Messages whose body
was damaged are dead-lettered with reason "damaged". It writes a new segment
and a new checkpoint, then moves every damaged file to DIR/quarantine/STAMP/
(it never deletes anything) and puts back each segment's intact prefix.
With --dry-run it reports the same and changes nothing.

It takes the directory's lock: stop the broker first. If it is interrupted,
run it again. Exit status: 0 repaired or sound, 3 damage found (--dry-run),
1 other error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if _, err := os.Stat(dir); err != nil {
				return fmt.Errorf("journal directory: %w", err)
			}
			rep, err := broker.Repair(dir, broker.RepairOptions{DryRun: dryRun})
			if err != nil {
				return err
			}
			printRepair(cmd.OutOrStdout(), rep)
			if dryRun && !rep.Sound() {
				return fmt.Errorf("%w: %s: %d damaged region(s), %d message(s) would be lost; run `chute journal repair %s` to repair",
					errCorrupt, dir, len(rep.Damage), len(rep.Lost)+lostInRanges(rep.LostSeqs), dir)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be lost and done; change nothing")
	return cmd
}

func lostInRanges(rs [][2]uint64) int {
	n := 0
	for _, r := range rs {
		n += int(r[1] - r[0] + 1)
	}
	return n
}

func printRepair(out io.Writer, rep *broker.RepairReport) {
	if rep.DryRun {
		fmt.Fprintln(out, "dry run: nothing changed")
	}
	if rep.Torn != nil {
		fmt.Fprintf(out, "torn tail (never confirmed; cut on open): %s from offset %d\n", rep.Torn.File, rep.Torn.Off)
	}
	if rep.Sound() {
		fmt.Fprintln(out, "no damage: nothing to repair")
		return
	}
	fmt.Fprintf(out, "damage (%d):\n", len(rep.Damage))
	for _, d := range rep.Damage {
		if d.End > d.Off {
			fmt.Fprintf(out, "  %s offset %d..%d (%d bytes): %s\n", d.File, d.Off, d.End, d.End-d.Off, d.Reason)
		} else {
			fmt.Fprintf(out, "  %s: %s\n", d.File, d.Reason)
		}
	}
	verb := "are"
	if rep.DryRun {
		verb = "would be"
	}
	fmt.Fprintf(out, "lost messages (%d), whose body was damaged; they %s dead-lettered with reason \"damaged\":\n", len(rep.Lost), verb)
	for _, m := range rep.Lost {
		fmt.Fprintf(out, "  %s seq %d (body at %s offset %d: %s)\n", m.Queue, m.Seq, m.File, m.Off, m.Why)
	}
	for _, r := range rep.LostSeqs {
		fmt.Fprintf(out, "lost publishes: seq %d..%d (their record is unreadable; queue unknown)\n", r[0], r[1])
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(out, "intact records that no longer apply after the damage (%d):\n", len(rep.Skipped))
		for _, s := range rep.Skipped {
			fmt.Fprintf(out, "  %s\n", s)
		}
	}
	if rep.Carried > 0 {
		fmt.Fprintf(out, "intact bodies copied out of cut segments: %d\n", rep.Carried)
	}
	if !rep.DryRun {
		for _, m := range rep.Moved {
			fmt.Fprintf(out, "quarantined: %s -> %s\n", m, rep.Quarantine)
		}
		fmt.Fprintf(out, "new checkpoint at %08x:%08x\nrepaired\n", uint32(rep.Checkpoint>>32), uint32(rep.Checkpoint))
	}
}

type dumpRecord struct {
	Pos      string   `json:"pos"`
	Type     string   `json:"type"`
	Time     string   `json:"time"`
	Name     string   `json:"name,omitempty"`
	Sub      string   `json:"sub,omitempty"`
	FirstSeq uint64   `json:"first_seq,omitempty"`
	Messages int      `json:"messages,omitempty"`
	Bytes    int      `json:"bytes,omitempty"`
	Seqs     []uint64 `json:"seqs,omitempty"`
	N        int64    `json:"n,omitempty"`
}

func dumpLine(pos uint64, r *engine.Record) dumpRecord {
	d := dumpRecord{Pos: fmt.Sprintf("%08x:%08x", uint32(pos>>32), uint32(pos)), Type: r.Type.String(),
		Time: time.Unix(0, r.Time).UTC().Format(time.RFC3339Nano), Name: r.Name, Sub: r.Sub,
		FirstSeq: r.FirstSeq, Messages: len(r.Msgs), Seqs: r.Seqs, N: r.N}
	for _, m := range r.Msgs {
		d.Bytes += len(m.Blob)
	}
	for _, it := range r.Items {
		d.Seqs = append(d.Seqs, it.Seq)
	}
	for _, p := range r.Parts { // a transaction: its messages and settled sequences
		if p.Type == engine.RecPublish && d.FirstSeq == 0 {
			d.FirstSeq = p.FirstSeq
		}
		d.Messages += len(p.Msgs)
		for _, m := range p.Msgs {
			d.Bytes += len(m.Blob)
		}
		for _, it := range p.Items {
			d.Seqs = append(d.Seqs, it.Seq)
		}
	}
	return d
}

func (d dumpRecord) text() string {
	s := fmt.Sprintf("%s %s %-14s %s", d.Pos, d.Time, d.Type, d.Name)
	if d.Sub != "" {
		s += " " + d.Sub
	}
	if d.Messages > 0 {
		s += fmt.Sprintf(" messages=%d bytes=%d", d.Messages, d.Bytes)
		if d.FirstSeq > 0 {
			s += fmt.Sprintf(" seq=%d..%d", d.FirstSeq, d.FirstSeq+uint64(d.Messages)-1)
		}
	}
	if len(d.Seqs) > 0 {
		s += fmt.Sprintf(" seqs=%v", d.Seqs)
	}
	if d.N != 0 {
		s += fmt.Sprintf(" n=%d", d.N)
	}
	return s
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}
