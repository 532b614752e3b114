package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
)

func newJournalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Inspect a journal directory offline (the broker must not be running on it)",
	}
	cmd.AddCommand(newJournalVerifyCmd(), newJournalDumpCmd())
	return cmd
}

// errCorrupt makes verify exit with status 3, which scripts can test.
var errCorrupt = errors.New("journal is damaged")

func newJournalVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every segment, record, message checksum and the checkpoint",
		Long: `verify reads every segment of the journal in DIR (also those before the
checkpoint, which Open does not read), checks each frame's checksum, decodes
each record and each message, restores the checkpoint and replays the records
after it. It changes nothing. Exit status: 0 sound, 3 damaged, 1 other error.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verifyJournal(cmd.OutOrStdout(), args[0])
		},
	}
}

func verifyJournal(out io.Writer, dir string) error {
	var msgs int64
	rep, err := journal.Scan(nil, dir, func(pos uint64, payload []byte) error {
		r, err := engine.Decode(payload)
		if err != nil {
			return err
		}
		for i, m := range r.Msgs {
			if r.Type != engine.RecPublish && r.Type != engine.RecBlobs {
				break
			}
			if _, _, _, _, err := engine.DecodeBlob(m.Blob); err != nil {
				return fmt.Errorf("message %d of the record at %x: %w", i, pos, err)
			}
			msgs++
		}
		return nil
	})
	if err != nil {
		var ce *journal.CorruptionError
		if errors.As(err, &ce) {
			fmt.Fprintf(out, "DAMAGED: %s at offset %d: %s\n", ce.File, ce.Offset, ce.Reason)
			return fmt.Errorf("%w: %w", errCorrupt, err)
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
		fmt.Fprintf(out, "DAMAGED: checkpoint: %v\n", err)
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	e := engine.New()
	if snap != nil {
		if e, err = engine.Restore(snap); err != nil {
			fmt.Fprintf(out, "DAMAGED: checkpoint at %x: %v\n", from, err)
			return fmt.Errorf("%w: %w", errCorrupt, err)
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
		fmt.Fprintf(out, "DAMAGED: replay: %v\n", err)
		return fmt.Errorf("%w: %w", errCorrupt, err)
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
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dump DIR",
		Short: "Print every record of the journal",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			_, err := journal.Scan(nil, args[0], func(pos uint64, payload []byte) error {
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
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per record")
	return cmd
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
