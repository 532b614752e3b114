package engine

// topic is a fan-out point: a message published to it is put on every
// subscription whose filter matches. Each subscription is an ordinary queue;
// all of them reference the one stored blob.
type topic struct {
	name  string
	cfg   TopicConfig
	subs  []*queue // in subscription order, which is the fan-out order
	dedup dedup
	total TopicTotals
}

// TopicTotals are a topic's cumulative counters.
type TopicTotals struct {
	Published int64 // messages accepted (duplicates excluded)
	Unrouted  int64 // accepted messages that matched no subscription
	// DedupForgotten counts de-dup entries forgotten early (message IDs
	// beyond MaxDedupIDs, sessions beyond MaxSessions).
	DedupForgotten int64
}

// subscription binds a queue to a topic.
type subscription struct {
	topic  *topic
	filter map[string]string // every pair must appear among the headers
}

func (t *topic) unsubscribe(q *queue) {
	for i, s := range t.subs {
		if s == q {
			t.subs = append(t.subs[:i], t.subs[i+1:]...)
			break
		}
	}
	q.sub = nil
}
