package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
)

// chute backup and chute restore (docs/operations.md, "Backup and
// restore"; the layout and the guarantees are in broker/backup.go).

func newBackupCmd() *cobra.Command {
	var f clientFlags
	var data string
	var link bool
	cmd := &cobra.Command{
		Use:   "backup [--server ADDR | --data DIR [--link]] OUT",
		Short: "Back up a broker into a new directory: a running one over the API, a stopped one from its data directory",
		Long: `backup writes a consistent copy of a broker's journal into OUT, a new or
empty directory: a checkpoint at a journal position P, the segments it needs
(the last one up to P), and manifest.json (formats, P, every file's size and
SHA-256), written last. chute restore turns it back into a data directory.

With --server (the default: $CHUTE_SERVER or ` + client.DefaultAddr + `) the running
broker takes a fresh checkpoint and streams the files; publishes pause only
while its snapshot is taken (the output says how long). This is the only way
to back up a running broker: its files change under any other copy.

With --data DIR the broker must be stopped: backup takes the directory's lock
(and refuses, naming the holder, while a broker runs there) and copies its
newest checkpoint and every segment as they are. --link hard-links the sealed
segments instead of copying them (OUT must be on the same file system): quick
and small, but a link shares the disk with the original, so it is no defence
against losing that disk. Copies are the default.

Exit status: 0 done, 1 failed, 2 bad usage, 3 the source is damaged.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			switch {
			case data != "" && cmd.Flags().Changed("server"):
				return usageError{errors.New("--data backs up a stopped broker's directory, --server a running broker: give one")}
			case link && data == "":
				return usageError{errors.New("--link needs --data DIR (a stopped broker on the same file system)")}
			}
			start := time.Now()
			var m *broker.BackupManifest
			var err error
			from := data
			if data != "" {
				m, err = broker.BackupStoppedDir(data, out, broker.BackupStoppedOptions{Link: link})
				if errors.Is(err, broker.ErrLocked) {
					err = fmt.Errorf("%w\na running broker is backed up over the API: chute backup --server ADDR %s", err, out)
				}
			} else {
				var c *client.Client
				if c, err = f.dial(cmd.ErrOrStderr()); err != nil {
					return err
				}
				defer c.Close()
				from = f.target.hostport
				m, err = backupServer(cmd.Context(), c, out)
				err = f.explain(err)
			}
			if err != nil {
				return err
			}
			return printBackup(cmd.OutOrStdout(), f.json, from, out, m, time.Since(start))
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&data, "data", "", "back up the data directory DIR of a stopped broker instead of a running one")
	cmd.Flags().BoolVar(&link, "link", false, "with --data: hard-link sealed segments instead of copying them (same file system; shares the disk)")
	return cmd
}

// backupServer receives a running broker's backup into out.
func backupServer(ctx context.Context, c *client.Client, out string) (*broker.BackupManifest, error) {
	w, err := broker.CreateBackupDir(out)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := c.Backup(ctx, w.WriteChunk); err != nil {
		return nil, fmt.Errorf("backup (%s holds an incomplete copy, without a manifest: delete it): %w", out, err)
	}
	return w.Finish()
}

// backupFiles says what a backup holds: "a checkpoint at P and N segment(s)".
func backupFiles(m *broker.BackupManifest) string {
	segs := 0
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".seg") {
			segs++
		}
	}
	if segs == len(m.Files) {
		return fmt.Sprintf("no checkpoint, %d segment(s)", segs)
	}
	return fmt.Sprintf("a checkpoint at %s and %d segment(s)", m.Position, segs)
}

// backupSummary is `chute backup --json`: Files counts the checkpoint and
// the segments (the manifest aside).
type backupSummary struct {
	Dir      string    `json:"dir"`
	Kind     string    `json:"kind"`
	Position string    `json:"position"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Pause    string    `json:"publish_pause"`
	Took     string    `json:"took"`
	Created  time.Time `json:"created"`
	Version  string    `json:"broker_version"`
}

func printBackup(w io.Writer, asJSON bool, from, out string, m *broker.BackupManifest, took time.Duration) error {
	s := backupSummary{Dir: out, Kind: m.Kind, Position: m.Position, Files: len(m.Files), Bytes: m.Bytes(),
		Pause: m.Pause().Round(10 * time.Microsecond).String(), Took: took.Round(time.Millisecond).String(), Created: m.Created, Version: m.Broker.Version}
	if asJSON {
		return printJSON(w, s)
	}
	fmt.Fprintf(w, "backed up %s into %s: %s, %s", from, out, backupFiles(m), fmtSize(s.Bytes))
	if m.Kind == broker.BackupLive {
		fmt.Fprintf(w, "; publishes paused %s", s.Pause)
	}
	fmt.Fprintf(w, "; took %s\nrestore with: chute restore %s DIR\n", s.Took, out)
	return nil
}

func newRestoreCmd() *cobra.Command {
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "restore [--force] BACKUP DIR",
		Short: "Check a backup and rebuild a data directory from it",
		Long: `restore checks the backup in BACKUP against its manifest (every file present,
with its size and SHA-256) and refuses a damaged or incomplete one with exit
status 3, changing nothing. Then it rebuilds the data directory DIR from it
(new or empty; --force deletes the journal of a non-empty DIR first), copying
and checking every file, and opens the broker on DIR once to check that it
starts. Then: chute serve --data DIR.

Messages that were leased when the backup was taken are ready again, as after
a restart. Exit status: 0 restored, 1 failed (DIR not empty, in use, ...),
2 bad usage, 3 the backup is damaged.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := broker.Restore(args[0], args[1], broker.RestoreOptions{Force: force})
			if err != nil {
				if errors.Is(err, broker.ErrBackupDamaged) {
					return fmt.Errorf("%w\nrefusing to restore %s: nothing was changed", err, args[0])
				}
				return err
			}
			return printRestore(cmd.OutOrStdout(), asJSON, args[0], args[1], rep)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "restore into a non-empty DIR, deleting its segments and checkpoints first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (for scripts)")
	return cmd
}

// restoreSummary is `chute restore --json`.
type restoreSummary struct {
	Dir      string   `json:"dir"`
	Backup   string   `json:"backup"`
	Kind     string   `json:"kind"`
	Position string   `json:"position"`
	Files    int      `json:"files"`
	Bytes    int64    `json:"bytes"`
	Removed  []string `json:"removed,omitempty"`
	Queues   int      `json:"queues"`
	Topics   int      `json:"topics"`
	Messages int64    `json:"messages"`
}

func printRestore(w io.Writer, asJSON bool, backup, dir string, rep *broker.RestoreReport) error {
	m := rep.Manifest
	s := restoreSummary{Dir: dir, Backup: backup, Kind: m.Kind, Position: m.Position, Files: len(m.Files),
		Bytes: m.Bytes(), Removed: rep.Removed, Queues: rep.Queues, Topics: rep.Topics, Messages: rep.Messages}
	if asJSON {
		return printJSON(w, s)
	}
	if len(rep.Removed) > 0 {
		fmt.Fprintf(w, "--force: deleted %d journal file(s) of %s\n", len(rep.Removed), dir)
	}
	fmt.Fprintf(w, "restored %s (a %s backup by chute %s, %s) into %s: %s, %s\n",
		backup, m.Kind, m.Broker.Version, m.Created.Local().Format(time.DateTime), dir, backupFiles(m), fmtSize(s.Bytes))
	fmt.Fprintf(w, "it holds %d queues, %d topics, %d messages\nstart it with: chute serve --data %s\n", s.Queues, s.Topics, s.Messages, dir)
	return nil
}
