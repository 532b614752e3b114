package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/recv"
	"github.com/chutemq/chute/internal/replica"
)

// Sharded serves chute.API from a process's nodes, one per shard
// (nodes[k] of shard k): each call goes to the API of the shard that
// holds its queue, topic or schedule, by the directory (place.go). A
// node that does not lead that shard answers, as a single shard's does,
// with a *chute.LeaderError naming that shard's leader, which clients
// follow. A name the directory does not know is shard 0's (which then
// answers that it is not found, or is behind: see Node.Placement).
//
// Placement: a topic with its subscriptions, and a queue with its
// dead-letter queue, are in one shard, so that a publish's fan-out and a
// dead-lettering stay one command. A queue with a Group is in its
// group's shard (hash of the group), as are all the queues of that group
// (a transaction spans one group: one shard); a queue without a Group
// whose dead-letter queue exists already goes where that is; any other
// queue or topic goes to the hash of its name; a subscription to its
// topic's shard, a schedule to its target's. A dead-letter queue placed
// already in another shard than its queue (one shared by queues of
// several groups or topics) stays there: the queue's shard dead-letters
// into an outbox of that name, and the Forwarder carries the letters
// across (forward.go); lists leave outboxes out.
type Sharded struct {
	apis []*API
	dir  *Node // shard 0's: the directory
}

// NewSharded returns the API of a process's nodes, nodes[k] the node of
// shard k.
func NewSharded(nodes []*Node) *Sharded {
	s := &Sharded{dir: nodes[0]}
	for _, n := range nodes {
		s.apis = append(s.apis, NewAPI(n))
	}
	return s
}

var (
	_ chute.API                  = (*Sharded)(nil)
	_ chute.AsyncPublisher       = (*Sharded)(nil)
	_ recv.StandingReceiver      = (*Sharded)(nil)
	_ interface{ Close() error } = (*Sharded)(nil)
)

// ShardOf is the shard the directory places name in (0 if none).
func (s *Sharded) ShardOf(name string) uint32 {
	if sh, ok := s.dir.Placement(name); ok && int(sh) < len(s.apis) {
		return sh
	}
	return 0
}

func (s *Sharded) of(name string) *API { return s.apis[s.ShardOf(name)] }

// home is the shard a name (a topic's, a queue's or its group's) hashes
// to.
func (s *Sharded) home(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32() % uint32(len(s.apis))
}

// place puts names in shard, and returns those it placed (not those
// there already, which it places again: that renews their time, so that
// a delete that finds them missing meanwhile leaves them: deleted), for
// unplace if what follows fails. A name in another shard fails it (what
// it placed is freed).
func (s *Sharded) place(ctx context.Context, shard uint32, names ...string) ([]string, error) {
	var placed []string
	for _, name := range names {
		sh, there := s.dir.Placement(name)
		if err := s.dir.Place(ctx, PlaceRequest{Name: name, Shard: shard}); err != nil {
			s.unplace(ctx, placed...)
			return nil, s.apis[0].publicErr(err)
		}
		if !there || sh != shard {
			placed = append(placed, name)
		}
	}
	return placed, nil
}

// unplace frees names, as well as it can (a name left placed with
// nothing of that name in its shard is freed by the next delete of it).
func (s *Sharded) unplace(ctx context.Context, names ...string) {
	// Not cut short by the caller's end (the name would stay placed), but
	// not longer than unplaceTimeout either (a shard 0 without a quorum).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unplaceTimeout)
	defer cancel()
	for _, name := range names {
		s.dir.Place(ctx, PlaceRequest{Name: name, Unplace: true})
	}
}

// unplaceTimeout bounds the freeing of names a refused create placed.
const unplaceTimeout = 10 * time.Second

// created is a create's outcome: what it placed is freed if the shard
// refused it (not if it may have been done, or must be sent to another
// node).
func (s *Sharded) created(ctx context.Context, placed []string, err error) error {
	if err != nil && !errors.Is(err, chute.ErrNotLeader) && !errors.Is(err, chute.ErrOutcomeUnknown) &&
		!errors.Is(err, chute.ErrClosed) && !errors.Is(err, chute.ErrExists) && ctx.Err() == nil {
		s.unplace(ctx, placed...)
	}
	return err
}

// deleted is a delete's outcome: the name is freed once its shard has it
// no more: deleted now, or not there and placed over placeGrace ago (a
// create that crashed between its two steps left it; a younger one may
// be a create in progress, whose name must stay).
func (s *Sharded) deleted(ctx context.Context, name string, err error) error {
	if _, ok := s.dir.Placement(name); ok && (err == nil || notFound(err)) {
		req := PlaceRequest{Name: name, Unplace: true}
		if err != nil {
			req.MinAge = placeGrace
		}
		if perr := s.dir.Place(ctx, req); perr != nil && err == nil {
			return s.apis[0].publicErr(perr)
		}
	}
	return err
}

// placeGrace is how old a placement must be for a delete that finds its
// name missing in the shard to free it: far longer than a create takes
// between placing and making the name. (A variable for the tests.)
var placeGrace = time.Minute

// notFound says whether a delete's refusal is that its queue, topic,
// subscription or schedule is not there.
func notFound(err error) bool {
	return errors.Is(err, chute.ErrNotFound) || errors.Is(err, chute.ErrQueueNotFound) ||
		errors.Is(err, chute.ErrTopicNotFound) || errors.Is(err, chute.ErrScheduleNotFound)
}

// deadLetterName is the dead-letter queue cfg makes queue name use (""
// none).
func deadLetterName(name string, cfg chute.QueueConfig) string {
	if cfg.NoDeadLetter {
		return ""
	}
	return cmp.Or(cfg.DeadLetterQueue, name+chute.DeadLetterSuffix)
}

// queueShard is where queue name with cfg goes (see Sharded).
func (s *Sharded) queueShard(name string, cfg chute.QueueConfig) uint32 {
	switch dsh, dlqPlaced := s.dir.Placement(deadLetterName(name, cfg)); {
	case cfg.Group != "":
		return s.home(cfg.Group)
	case dlqPlaced:
		return dsh
	}
	return s.home(name)
}

// placeDeadLetter places dead-letter queue dlq ("" none) in shard sh
// unless it is placed already: in another shard, the forwarder carries
// the dead letters there (forward.go). It returns what it placed. It
// asks shard 0's leader even when this node's copy has dlq placed: the
// copy may not have a delete of it yet, and a dead-letter queue made
// with its queue (the engine makes it) and never placed would be out of
// the clients' reach (TestShardedStaleDirectory).
func (s *Sharded) placeDeadLetter(ctx context.Context, sh uint32, dlq string) ([]string, error) {
	if dlq == "" {
		return nil, nil
	}
	placed, err := s.place(ctx, sh, dlq)
	if errors.Is(err, chute.ErrExists) { // in another shard
		return nil, nil
	}
	return placed, err
}

// placeWithDeadLetter places name in shard sh, and its dead-letter queue
// (placeDeadLetter), and returns what it placed.
func (s *Sharded) placeWithDeadLetter(ctx context.Context, sh uint32, name string, cfg chute.QueueConfig) ([]string, error) {
	placed, err := s.place(ctx, sh, name)
	if err != nil {
		return nil, err
	}
	more, err := s.placeDeadLetter(ctx, sh, deadLetterName(name, cfg))
	if err != nil {
		s.unplace(ctx, placed...)
		return nil, err
	}
	return append(placed, more...), nil
}

// elsewhere says whether queue name, listed by shard k, is an outbox:
// placed in another shard (forward.go).
func (s *Sharded) elsewhere(name string, k int) bool {
	sh, ok := s.dir.Placement(name)
	return ok && int(sh) != k
}

// Publish implements chute.API.
func (s *Sharded) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	return s.of(target).Publish(ctx, target, msgs...)
}

// PublishAsync implements chute.AsyncPublisher.
func (s *Sharded) PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (chute.Pending, error) {
	return s.of(target).PublishAsync(ctx, target, msgs...)
}

// Receive implements chute.API.
func (s *Sharded) Receive(ctx context.Context, queue string, opts chute.ReceiveOptions) ([]chute.Delivery, error) {
	return s.of(queue).Receive(ctx, queue, opts)
}

// StandingReceive implements recv.StandingReceiver.
func (s *Sharded) StandingReceive(queue string, lease time.Duration) recv.Standing {
	return s.of(queue).StandingReceive(queue, lease)
}

// Ack implements chute.API.
func (s *Sharded) Ack(ctx context.Context, queue string, receipts ...string) error {
	return s.of(queue).Ack(ctx, queue, receipts...)
}

// Nack implements chute.API.
func (s *Sharded) Nack(ctx context.Context, queue string, nacks ...chute.Nack) error {
	return s.of(queue).Nack(ctx, queue, nacks...)
}

// Extend implements chute.API.
func (s *Sharded) Extend(ctx context.Context, queue string, lease time.Duration, receipts ...string) error {
	return s.of(queue).Extend(ctx, queue, lease, receipts...)
}

// Peek implements chute.API.
func (s *Sharded) Peek(ctx context.Context, queue string, max int) ([]chute.Delivery, error) {
	return s.of(queue).Peek(ctx, queue, max)
}

// Commit implements chute.API: a transaction's queues and topics must be
// in one shard (one group), else chute.ErrCrossGroup.
func (s *Sharded) Commit(ctx context.Context, tx chute.Tx) (chute.TxResult, error) {
	var names []string
	for _, p := range tx.Publish {
		names = append(names, p.Target)
	}
	for _, a := range tx.Ack {
		names = append(names, a.Queue)
	}
	for _, n := range tx.Nack {
		names = append(names, n.Queue)
	}
	if len(names) == 0 {
		return s.apis[0].Commit(ctx, tx)
	}
	sh := s.ShardOf(names[0])
	for _, n := range names[1:] {
		if o := s.ShardOf(n); o != sh {
			return chute.TxResult{}, fmt.Errorf("%w: %q is in shard %d, %q in shard %d (a transaction spans one shard: give its queues one group)",
				chute.ErrCrossGroup, names[0], sh, n, o)
		}
	}
	return s.apis[sh].Commit(ctx, tx)
}

// CreateQueue implements chute.API: the queue and its dead-letter queue
// are placed, then created in their shard.
func (s *Sharded) CreateQueue(ctx context.Context, name string, cfg chute.QueueConfig) error {
	if err := chute.ValidateName(name); err != nil {
		return err
	}
	sh := s.queueShard(name, cfg)
	placed, err := s.placeWithDeadLetter(ctx, sh, name, cfg)
	if err != nil {
		return err
	}
	return s.created(ctx, placed, s.apis[sh].CreateQueue(ctx, name, cfg))
}

// UpdateQueue implements chute.API: a new dead-letter queue not placed
// yet is placed in the queue's shard.
func (s *Sharded) UpdateQueue(ctx context.Context, name string, cfg chute.QueueConfig) error {
	sh, ok := s.dir.Placement(name)
	if !ok {
		return s.apis[0].UpdateQueue(ctx, name, cfg) // not found, or this node is behind
	}
	if _, err := s.placeDeadLetter(ctx, sh, deadLetterName(name, cfg)); err != nil {
		return err
	}
	return s.apis[sh].UpdateQueue(ctx, name, cfg)
}

// DeleteQueue implements chute.API (its dead-letter queue stays, as in
// one broker).
func (s *Sharded) DeleteQueue(ctx context.Context, name string) error {
	return s.deleted(ctx, name, s.of(name).DeleteQueue(ctx, name))
}

// PurgeQueue implements chute.API.
func (s *Sharded) PurgeQueue(ctx context.Context, name string) (int64, error) {
	return s.of(name).PurgeQueue(ctx, name)
}

// QueueStats implements chute.API.
func (s *Sharded) QueueStats(ctx context.Context, name string) (chute.QueueStats, error) {
	return s.of(name).QueueStats(ctx, name)
}

// Queues implements chute.API: every shard's, from its leader's state
// where this node leads it, else from this node's copy (a few
// milliseconds behind at most, while it keeps up).
func (s *Sharded) Queues(ctx context.Context) ([]chute.QueueStats, error) {
	var out []chute.QueueStats
	for k, a := range s.apis {
		var all []engine.QueueStats
		if err := a.n.ReadLocal(ctx, func(sh *replica.Shard) { all = sh.Queues() }); err != nil {
			return nil, a.publicErr(err)
		}
		for _, q := range all {
			if !s.elsewhere(q.Name, k) {
				out = append(out, a.publicStats(q))
			}
		}
	}
	slices.SortFunc(out, func(a, b chute.QueueStats) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// CreateTopic implements chute.API.
func (s *Sharded) CreateTopic(ctx context.Context, name string, cfg chute.TopicConfig) error {
	if err := chute.ValidateName(name); err != nil {
		return err
	}
	sh := s.home(name)
	placed, err := s.place(ctx, sh, name)
	if err != nil {
		return err
	}
	return s.created(ctx, placed, s.apis[sh].CreateTopic(ctx, name, cfg))
}

// DeleteTopic implements chute.API (its subscriptions' queues stay, as
// in one broker).
func (s *Sharded) DeleteTopic(ctx context.Context, name string) error {
	return s.deleted(ctx, name, s.of(name).DeleteTopic(ctx, name))
}

// Topics implements chute.API, as Queues.
func (s *Sharded) Topics(ctx context.Context) ([]chute.TopicStats, error) {
	var out []chute.TopicStats
	for _, a := range s.apis {
		var all []engine.TopicStats
		if err := a.n.ReadLocal(ctx, func(sh *replica.Shard) { all = sh.Topics() }); err != nil {
			return nil, a.publicErr(err)
		}
		for _, t := range all {
			out = append(out, topicStats(t))
		}
	}
	slices.SortFunc(out, func(a, b chute.TopicStats) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Subscribe implements chute.API: the subscription (and its dead-letter
// queue) in its topic's shard.
func (s *Sharded) Subscribe(ctx context.Context, topic, name string, cfg chute.SubscriptionConfig) error {
	sh, ok := s.dir.Placement(topic)
	if !ok {
		return s.apis[0].Subscribe(ctx, topic, name, cfg) // not found, or this node is behind
	}
	if err := chute.ValidateName(name); err != nil {
		return err
	}
	placed, err := s.placeWithDeadLetter(ctx, sh, name, cfg.Queue)
	if err != nil {
		return err
	}
	return s.created(ctx, placed, s.apis[sh].Subscribe(ctx, topic, name, cfg))
}

// Unsubscribe implements chute.API.
func (s *Sharded) Unsubscribe(ctx context.Context, topic, name string) error {
	return s.deleted(ctx, name, s.of(topic).Unsubscribe(ctx, topic, name))
}

// Redrive implements chute.API: dead letters whose source queue is in
// another shard go to an outbox of its name, from which the forwarder
// carries them to it (forward.go).
func (s *Sharded) Redrive(ctx context.Context, deadLetterQueue string, max int64) (int64, error) {
	a, outboxes, err := s.redriveAt(ctx, deadLetterQueue)
	if err != nil {
		return 0, err
	}
	return a.redrive(ctx, deadLetterQueue, max, outboxes)
}

// redriveAt is the API of dead-letter queue dlq's shard, and the source
// queues of dlq's letters that are in other shards (read at its leader).
func (s *Sharded) redriveAt(ctx context.Context, dlq string) (*API, []string, error) {
	sh := s.ShardOf(dlq)
	a := s.apis[sh]
	var sources []string
	if err := a.n.Read(ctx, func(x *replica.Shard) { sources = x.DeadSources(dlq) }); err != nil {
		return nil, nil, a.publicErr(err)
	}
	var outboxes []string
	for _, src := range sources {
		if s.elsewhere(src, int(sh)) {
			outboxes = append(outboxes, src)
		}
	}
	return a, outboxes, nil
}

// PauseQueue implements chute.API.
func (s *Sharded) PauseQueue(ctx context.Context, name string) error {
	return s.of(name).PauseQueue(ctx, name)
}

// ResumeQueue implements chute.API.
func (s *Sharded) ResumeQueue(ctx context.Context, name string) error {
	return s.of(name).ResumeQueue(ctx, name)
}

// GetMessage implements chute.API.
func (s *Sharded) GetMessage(ctx context.Context, queue string, ref chute.MessageRef) (chute.MessageInfo, error) {
	return s.of(queue).GetMessage(ctx, queue, ref)
}

// CancelMessages implements chute.API.
func (s *Sharded) CancelMessages(ctx context.Context, queue string, refs ...chute.MessageRef) ([]chute.CancelResult, error) {
	return s.of(queue).CancelMessages(ctx, queue, refs...)
}

// RedriveMessages implements chute.API, as Redrive.
func (s *Sharded) RedriveMessages(ctx context.Context, deadLetterQueue string, refs ...chute.MessageRef) ([]chute.RedriveResult, error) {
	a, outboxes, err := s.redriveAt(ctx, deadLetterQueue)
	if err != nil {
		return nil, err
	}
	return a.redriveMessages(ctx, deadLetterQueue, refs, outboxes)
}

// CreateSchedule implements chute.API: in its target's shard (whose
// leader's timer fires it).
func (s *Sharded) CreateSchedule(ctx context.Context, name string, cfg chute.ScheduleConfig) error {
	if err := chute.ValidateName(name); err != nil {
		return err
	}
	sh := s.ShardOf(cfg.Target)
	placed, err := s.place(ctx, sh, name)
	if err != nil {
		return err
	}
	return s.created(ctx, placed, s.apis[sh].CreateSchedule(ctx, name, cfg))
}

// DeleteSchedule implements chute.API.
func (s *Sharded) DeleteSchedule(ctx context.Context, name string) error {
	return s.deleted(ctx, name, s.of(name).DeleteSchedule(ctx, name))
}

// PauseSchedule implements chute.API.
func (s *Sharded) PauseSchedule(ctx context.Context, name string) error {
	return s.of(name).PauseSchedule(ctx, name)
}

// ResumeSchedule implements chute.API.
func (s *Sharded) ResumeSchedule(ctx context.Context, name string) error {
	return s.of(name).ResumeSchedule(ctx, name)
}

// Schedules implements chute.API: every shard's; the next firing is
// known for those of the shards this node leads (their timers run here).
func (s *Sharded) Schedules(ctx context.Context) ([]chute.ScheduleInfo, error) {
	var out []chute.ScheduleInfo
	for _, a := range s.apis {
		infos, err := a.Schedules(ctx)
		if errors.Is(err, chute.ErrNotLeader) {
			err = a.n.ReadLocal(ctx, func(sh *replica.Shard) {
				infos = nil
				for _, st := range sh.Schedules() {
					infos = append(infos, engine.ScheduleInfoOf(st, nil, nil))
				}
			})
		}
		if err != nil {
			return nil, a.publicErr(err)
		}
		out = append(out, infos...)
	}
	slices.SortFunc(out, func(a, b chute.ScheduleInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Close implements chute.API: the nodes are their owner's to close.
func (s *Sharded) Close() error { return nil }
