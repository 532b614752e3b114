package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/internal/cluster"
)

// newClusterCmd: `chute cluster status`, a replicated cluster as one of
// its nodes sees it (issue 12; docs/replication.md).
func newClusterCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "cluster", Short: "a replicated cluster's members and leader; membership changes; backups"}
	f.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "members, leader, term, commit and each member's lag, as the node at --server sees them",
		Long: `status asks the node at --server (any member) for its view of the cluster:
the leader and term, its commit and applied indexes and snapshot, and the
members (voters and learners). Asked of the leader, each member's match
index and lag (the commit index minus the match) are known too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.clusterInfo(0)
			if err != nil {
				return err
			}
			all := []cluster.Info{in}
			for k := uint32(1); k < in.Shards; k++ {
				sin, err := f.clusterInfo(k)
				if err != nil {
					return err
				}
				all = append(all, sin)
			}
			out := cmd.OutOrStdout()
			if f.json {
				e := json.NewEncoder(out)
				e.SetIndent("", "  ")
				if len(all) > 1 {
					return e.Encode(all) // one object per shard
				}
				return e.Encode(in)
			}
			for _, in := range all {
				if err := printClusterInfo(out, in); err != nil {
					return err
				}
			}
			return nil
		},
	})
	var force bool
	backup := &cobra.Command{
		Use:   "backup DIR",
		Short: "back up the cluster into a new directory: the leader's consistent snapshot of every queue, message, lease and schedule",
		Long: `backup asks the leader (any node of --server answers with its address) for
its shard's state as of the last command it applied: one snapshot, taken on
the leader's loop between two commands, so consistent with the log at that
index. It writes DIR/shard.snapshot, then DIR/cluster-backup.json (size,
SHA-256, index, command version), both synced. Start a new cluster from it
with chute serve --cluster-restore DIR on every new node
(docs/operations.md, "Backups of a cluster").

A cluster of several shards: each shard's snapshot comes from its own
leader, one after another (shard 0, the directory, last), and it writes
DIR/shard-K.snapshot for the others. Meanwhile the forwarder of every member
is held, so that no dead letter moves between two shards while their
snapshots are taken (dead letters for another shard wait in their outboxes
until the backup ends). A member that cannot be held fails the backup, unless
--force; a hold that lapsed (a member restarted) fails it too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := f.clusterInfo(0)
			if err != nil {
				return err
			}
			n := max(in.Shards, 1)
			m := cluster.BackupManifest{Created: time.Now().UTC(), Shards: make([]cluster.ShardBackup, n-1)}
			snaps := make([][]byte, n)
			var hold *forwardHold
			if n > 1 {
				if hold, err = f.holdForwarders(in.Members, force, cmd.OutOrStdout()); err != nil {
					return err
				}
				defer hold.release()
			}
			// Shard 0 (the directory) last: every name in the other
			// shards' snapshots was placed before it was made, so it is
			// in the directory's later one too.
			for k := int(n) - 1; k >= 0; k-- {
				if hold != nil {
					if err := hold.renew(); err != nil {
						return err
					}
				}
				data, applied, version, addr, err := f.shardSnapshot(uint32(k))
				if err != nil {
					return err
				}
				snaps[k] = data
				if k == 0 {
					m.Applied, m.CommandVersion, m.From = applied, version, addr
				} else {
					m.Shards[k-1] = cluster.ShardBackup{Applied: applied, CommandVersion: version, From: addr}
				}
				if n > 1 {
					fmt.Fprintf(cmd.OutOrStdout(), "shard %d: %d bytes at index %d from %s\n", k, len(data), applied, addr)
				}
			}
			if hold != nil { // held throughout
				if err := hold.renew(); err != nil {
					return err
				}
			}
			if n == 1 {
				m.Shards = nil
			}
			if err := cluster.WriteBackup(args[0], snaps, m); err != nil {
				return err
			}
			if in.Shards > 1 {
				fmt.Fprintf(cmd.OutOrStdout(), "backed up %d shards into %s\n", in.Shards, args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "backed up %d bytes at index %d from %s into %s\n", len(snaps[0]), m.Applied, m.From, args[0])
			}
			return nil
		},
	}
	backup.Flags().BoolVar(&force, "force", false, "take the backup even if a member's forwarder cannot be held (a dead letter carried between two shards' snapshots may then be in neither)")
	cmd.AddCommand(backup)
	cmd.AddCommand(f.memberCmd("add", "add ID URL",
		"add node ID, reached at URL, as a learner (it gets the log and does not vote yet)",
		`add asks the leader to add node ID as a learner: start the node first with
--join, its own --node-id and a --cluster-peers that lists every member and
itself. The node catches up from the leader's log or snapshot; promote it
then. URL is its address as the others reach it (http://host:port or
https://host:port); every member learns it from the log. One change at a
time: the command returns once the change is applied.`,
		"node %d added as a learner; promote it once it has caught up (chute cluster status: its lag)"))
	cmd.AddCommand(f.memberCmd("promote", "promote ID", "make the learner ID a voter (refused while it is far behind)", "",
		"node %d is a voter"))
	cmd.AddCommand(f.memberCmd("remove", "remove ID", "remove node ID from the cluster (a voter or a learner)",
		`remove asks the leader to remove node ID. Stop the node afterwards. A node
that lost its data is removed, then joins again under a new ID (with
--join), never under its old one.`,
		"node %d removed"))
	return cmd
}

// shardSnapshot fetches shard k's snapshot from its leader (a follower's
// answer names it), checked against the SHA-256 the leader sent.
func (f *clientFlags) shardSnapshot(k uint32) (data []byte, applied uint64, version uint8, addr string, err error) {
	resp, addr, err := f.atLeader(http.MethodGet, cluster.ShardPath(cluster.BackupPath, k), nil)
	if err != nil {
		return nil, 0, 0, addr, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, 0, 0, addr, fmt.Errorf("%s answered %s: %s", addr, resp.Status, strings.TrimSpace(string(msg)))
	}
	if data, err = io.ReadAll(resp.Body); err != nil {
		return nil, 0, 0, addr, fmt.Errorf("%s: %w", addr, err)
	}
	sum := sha256.Sum256(data)
	if got, want := hex.EncodeToString(sum[:]), resp.Header.Get(cluster.BackupSHA256Header); got != want {
		return nil, 0, 0, addr, fmt.Errorf("%s: shard %d's snapshot arrived damaged (SHA-256 %s, sent as %s)", addr, k, got, want)
	}
	applied, _ = strconv.ParseUint(resp.Header.Get(cluster.BackupAppliedHeader), 10, 64)
	v, _ := strconv.ParseUint(resp.Header.Get(cluster.BackupVersionHeader), 10, 8)
	return data, applied, uint8(v), addr, nil
}

// printClusterInfo prints one shard's status (its line names the shard
// in a cluster of several).
func printClusterInfo(out io.Writer, in cluster.Info) error {
	leader := "none known"
	if in.Leader != 0 {
		leader = fmt.Sprint(in.Leader)
	}
	if in.Shards > 1 {
		fmt.Fprintf(out, "shard %d of %d, ", in.Shard, in.Shards)
	}
	fmt.Fprintf(out, "node %d: leader %s, term %d, commit %d, applied %d, snapshot at %d, leaders seen %d, snapshots restored %d, sent %d, command version %d\n",
		in.ID, leader, in.Term, in.Commit, in.Applied, in.Snapshot, in.LeaderChanges, in.Restores, in.SnapshotsSent, max(in.Version, 1)) // (a node before versions: 1)
	if in.Carried+in.CarryFailures+in.Outboxed > 0 {
		fmt.Fprintf(out, "outboxes (dead letters for other shards): %d waiting, %d carried, %d carries failed\n", in.Outboxed, in.Carried, in.CarryFailures)
	}
	if !in.ForwardHeldUntil.IsZero() {
		fmt.Fprintf(out, "forwarder held by a backup until %s: dead letters for other shards wait in their outboxes\n", in.ForwardHeldUntil.UTC().Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tMATCH\tLAG\tREADS")
	for _, m := range in.Members {
		role := "learner"
		switch {
		case m.Leading:
			role = "leader"
		case m.Voter:
			role = "voter"
		}
		match, lag := "-", "-"
		if in.IsLeader {
			match, lag = fmt.Sprint(m.Match), fmt.Sprint(m.Lag)
		}
		reads := "-" // known on the leader (and for itself)
		if m.Version > 0 {
			reads = fmt.Sprintf("v%d", m.Version)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Addr, role, match, lag, reads)
	}
	return tw.Flush()
}

// memberCmd is `chute cluster OP ID [URL]`: a membership change (URL
// for add only); done is what it prints, with the ID.
func (f *clientFlags) memberCmd(op, use, short, long, done string) *cobra.Command {
	nargs := 1
	if op == "add" {
		nargs = 2
	}
	return &cobra.Command{
		Use: use, Short: short, Long: long, Args: cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := memberID(args[0])
			if err != nil {
				return err
			}
			req := cluster.MemberRequest{Op: op, ID: id}
			if op == "add" {
				req.Addr = args[1]
			}
			if err := f.changeMembers(req); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), done+"\n", id)
			return nil
		},
	}
}

func memberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageError{fmt.Errorf("node ID %q: want a number above 0", s)}
	}
	return id, nil
}

// clusterInfo GETs the node's status of shard (cluster.StatusPath).
func (f *clientFlags) clusterInfo(shard uint32) (cluster.Info, error) {
	resp, addr, err := f.clusterDo(http.MethodGet, cluster.ShardPath(cluster.StatusPath, shard), nil)
	if err != nil {
		return cluster.Info{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cluster.Info{}, fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	var in cluster.Info
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return cluster.Info{}, fmt.Errorf("%s: %w", addr, err)
	}
	return in, nil
}

// atLeader sends a request to the leader: a follower's answer (421)
// names it, and the request goes there.
//
// While no leader is known (an election, or a leadership being handed
// to another node: a cluster of several shards spreads its leaders in
// its first seconds) it asks again every 50 ms, for 2 s at most.
func (f *clientFlags) atLeader(method, path string, body []byte) (*http.Response, string, error) {
	g := *f
	for try := 0; ; try++ {
		resp, addr, err := g.clusterDo(method, path, body)
		if err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
			return resp, addr, err
		}
		var hint struct{ Error, Leader string }
		json.NewDecoder(resp.Body).Decode(&hint)
		resp.Body.Close()
		switch {
		case try == 40:
			return nil, addr, fmt.Errorf("%s: %s (try again once a leader is elected)", addr, hint.Error)
		case hint.Leader == "":
			time.Sleep(50 * time.Millisecond) // an election
		case try > 0:
			// A hint followed already: a node that has just handed its
			// leadership over can name itself or the other for a moment.
			time.Sleep(50 * time.Millisecond)
			g.server = hint.Leader
		default:
			g.server = hint.Leader
		}
	}
}

// changeMembers POSTs a membership change to the leader of every shard,
// one after the other (each shard is a group of every member).
func (f *clientFlags) changeMembers(req cluster.MemberRequest) error {
	in, err := f.clusterInfo(0)
	if err != nil {
		return err
	}
	for k := range max(in.Shards, 1) {
		if in.Shards > 1 {
			// Done already in this shard (a run that failed in a later
			// shard, run again): skipped.
			if sin, err := f.clusterInfo(k); err == nil && memberDone(sin, req) {
				continue
			}
		}
		if err := f.changeShardMembers(k, req); err != nil {
			if in.Shards > 1 {
				return fmt.Errorf("shard %d: %w (the shards before it are changed: run the command again)", k, err)
			}
			return err
		}
	}
	return nil
}

// memberDone says whether a shard's membership (as in) shows req done.
func memberDone(in cluster.Info, req cluster.MemberRequest) bool {
	i := slices.IndexFunc(in.Members, func(m cluster.Member) bool { return m.ID == req.ID })
	switch req.Op {
	case "add":
		return i >= 0
	case "promote":
		return i >= 0 && in.Members[i].Voter
	case "remove":
		return i < 0
	}
	return false
}

func (f *clientFlags) changeShardMembers(shard uint32, req cluster.MemberRequest) error {
	body, _ := json.Marshal(req)
	resp, addr, err := f.atLeader(http.MethodPost, cluster.ShardPath(cluster.MembersPath, shard), body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil
	case http.StatusBadRequest:
		return usageError{fmt.Errorf("%s: %s", addr, strings.TrimSpace(string(msg)))}
	default:
		return fmt.Errorf("%s answered %s: %s", addr, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// clusterDo sends a request to the first node of --server that can be
// connected to, with the token and TLS of the flags. A node that is not
// a cluster node (404) is an error.
func (f *clientFlags) clusterDo(method, path string, body []byte) (*http.Response, string, error) {
	list, token := f.serverAndToken()
	var lastErr error
	for _, addr := range strings.Split(list, ",") {
		addr = strings.TrimSpace(addr)
		target, err := parseServerAddr(addr)
		if err != nil {
			return nil, "", usageError{err}
		}
		hc := &http.Client{Timeout: 40 * time.Second}
		base := "http://" + target.hostport
		if target.scheme == "https" || f.tlsCA != "" || f.tlsInsecure {
			cfg := &tls.Config{InsecureSkipVerify: f.tlsInsecure} //nolint:gosec // only with --tls-insecure-skip-verify
			if f.tlsCA != "" {
				pool, err := loadCA(f.tlsCA)
				if err != nil {
					return nil, "", usageError{err}
				}
				cfg.RootCAs = pool
			}
			hc.Transport = &http.Transport{TLSClientConfig: cfg}
			base = "https://" + target.hostport
		}
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			return nil, "", err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			return nil, "", notClusterError{addr}
		}
		return resp, addr, nil
	}
	return nil, "", lastErr
}

// notClusterError is a 404 from a cluster endpoint: the server at addr
// serves no such path.
type notClusterError struct{ addr string }

func (e notClusterError) Error() string {
	return e.addr + " is not a cluster node (serve without --cluster-peers)"
}
