package engine

import "fmt"

// Queue and topic configurations in the record format, for the logs of
// other packages that carry them (internal/replica's commands): each is
// written after the record version it is in, so that a later version of
// the format still reads one written by an earlier broker.

// AppendQueueConfig appends c, in this version's record format.
func AppendQueueConfig(buf []byte, c *QueueConfig) []byte {
	return appendQueueConfig(append(buf, writeVersion), c)
}

// AppendTopicConfig appends c, in this version's record format.
func AppendTopicConfig(buf []byte, c *TopicConfig) []byte {
	return appendTopicConfig(append(buf, writeVersion), c)
}

// ReadQueueConfig reads what AppendQueueConfig wrote at the start of b,
// and how many bytes it took.
func ReadQueueConfig(b []byte) (QueueConfig, int, error) {
	var c QueueConfig
	d := configDecoder(b)
	d.queueConfig(&c)
	return c, d.off, d.err
}

// ReadTopicConfig reads what AppendTopicConfig wrote at the start of b,
// and how many bytes it took.
func ReadTopicConfig(b []byte) (TopicConfig, int, error) {
	var c TopicConfig
	d := configDecoder(b)
	d.topicConfig(&c)
	return c, d.off, d.err
}

func configDecoder(b []byte) *decoder {
	d := &decoder{b: b}
	if d.v = d.byte(); d.err == nil && (d.v == 0 || d.v > recordVersion) {
		d.err = fmt.Errorf("%w: a configuration of record version %d (this broker reads 1..%d)", ErrCorruptRecord, d.v, recordVersion)
	}
	return d
}

// AppendScheduleDef appends d, in this version's record format.
func AppendScheduleDef(buf []byte, d *ScheduleDef) []byte {
	return appendScheduleDef(append(buf, writeVersion), d)
}

// ReadScheduleDef reads what AppendScheduleDef wrote at the start of b,
// and how many bytes it took. Its body aliases b.
func ReadScheduleDef(b []byte) (ScheduleDef, int, error) {
	d := configDecoder(b)
	if d.err != nil {
		return ScheduleDef{}, 0, d.err
	}
	def := d.scheduleDef()
	return *def, d.off, d.err
}
