package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chutemq/chute/alerts"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// adminService implements chute.v1.AdminService on the server's API.
type adminService struct{ s *Server }

func reply[T any](msg *T, err error) (*connect.Response[T], error) {
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	return connect.NewResponse(msg), nil
}

func (a *adminService) CreateQueue(ctx context.Context, req *connect.Request[chutev1.CreateQueueRequest]) (*connect.Response[chutev1.CreateQueueResponse], error) {
	m := req.Msg
	cfg := wire.QueueConfigFromPB(m.GetConfig())
	if err := a.s.checkAlertAttributes(cfg); err != nil {
		return nil, wire.ToConnect(err)
	}
	return reply(&chutev1.CreateQueueResponse{}, a.s.api.CreateQueue(ctx, m.GetName(), cfg))
}

func (a *adminService) UpdateQueue(ctx context.Context, req *connect.Request[chutev1.UpdateQueueRequest]) (*connect.Response[chutev1.UpdateQueueResponse], error) {
	m := req.Msg
	cfg := wire.QueueConfigFromPB(m.GetConfig())
	if err := a.s.checkAlertAttributes(cfg); err != nil {
		return nil, wire.ToConnect(err)
	}
	return reply(&chutev1.UpdateQueueResponse{}, a.s.api.UpdateQueue(ctx, m.GetName(), cfg))
}

func (a *adminService) DeleteQueue(ctx context.Context, req *connect.Request[chutev1.DeleteQueueRequest]) (*connect.Response[chutev1.DeleteQueueResponse], error) {
	return reply(&chutev1.DeleteQueueResponse{}, a.s.api.DeleteQueue(ctx, req.Msg.GetName()))
}

func (a *adminService) PurgeQueue(ctx context.Context, req *connect.Request[chutev1.PurgeQueueRequest]) (*connect.Response[chutev1.PurgeQueueResponse], error) {
	n, err := a.s.api.PurgeQueue(ctx, req.Msg.GetName())
	return reply(&chutev1.PurgeQueueResponse{Purged: n}, err)
}

func (a *adminService) GetQueue(ctx context.Context, req *connect.Request[chutev1.GetQueueRequest]) (*connect.Response[chutev1.GetQueueResponse], error) {
	st, err := a.s.api.QueueStats(ctx, req.Msg.GetName())
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	qc := a.s.activity.count(st.Name)
	st.Consumers, st.Producers = int64(qc.Consumers), int64(qc.Producers)
	return connect.NewResponse(&chutev1.GetQueueResponse{Queue: wire.QueueStatsToPB(st)}), nil
}

func (a *adminService) ListQueues(ctx context.Context, _ *connect.Request[chutev1.ListQueuesRequest]) (*connect.Response[chutev1.ListQueuesResponse], error) {
	qs, err := a.s.api.Queues(ctx)
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	// The broker sees no connections: the counts come from the server's
	// activity tracker, which lists only queues that have an active client.
	active := map[string]QueueClients{}
	for _, qc := range a.s.QueueClients() {
		active[qc.Queue] = qc
	}
	out := &chutev1.ListQueuesResponse{Queues: make([]*chutev1.QueueStats, len(qs))}
	for i, q := range qs {
		qc := active[q.Name]
		q.Consumers, q.Producers = int64(qc.Consumers), int64(qc.Producers)
		out.Queues[i] = wire.QueueStatsToPB(q)
	}
	return connect.NewResponse(out), nil
}

func (a *adminService) CreateTopic(ctx context.Context, req *connect.Request[chutev1.CreateTopicRequest]) (*connect.Response[chutev1.CreateTopicResponse], error) {
	m := req.Msg
	cfg := wire.TopicStatsFromPB(&chutev1.TopicStats{Config: m.GetConfig()}).Config
	return reply(&chutev1.CreateTopicResponse{}, a.s.api.CreateTopic(ctx, m.GetName(), cfg))
}

func (a *adminService) DeleteTopic(ctx context.Context, req *connect.Request[chutev1.DeleteTopicRequest]) (*connect.Response[chutev1.DeleteTopicResponse], error) {
	return reply(&chutev1.DeleteTopicResponse{}, a.s.api.DeleteTopic(ctx, req.Msg.GetName()))
}

func (a *adminService) ListTopics(ctx context.Context, _ *connect.Request[chutev1.ListTopicsRequest]) (*connect.Response[chutev1.ListTopicsResponse], error) {
	ts, err := a.s.api.Topics(ctx)
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	out := &chutev1.ListTopicsResponse{Topics: make([]*chutev1.TopicStats, len(ts))}
	for i, t := range ts {
		out.Topics[i] = wire.TopicStatsToPB(t)
	}
	return connect.NewResponse(out), nil
}

func (a *adminService) Subscribe(ctx context.Context, req *connect.Request[chutev1.SubscribeRequest]) (*connect.Response[chutev1.SubscribeResponse], error) {
	m := req.Msg
	sub := subscriptionConfig(m)
	if err := a.s.checkAlertAttributes(sub.Queue); err != nil {
		return nil, wire.ToConnect(err)
	}
	return reply(&chutev1.SubscribeResponse{}, a.s.api.Subscribe(ctx, m.GetTopic(), m.GetName(), sub))
}

func (a *adminService) Unsubscribe(ctx context.Context, req *connect.Request[chutev1.UnsubscribeRequest]) (*connect.Response[chutev1.UnsubscribeResponse], error) {
	return reply(&chutev1.UnsubscribeResponse{}, a.s.api.Unsubscribe(ctx, req.Msg.GetTopic(), req.Msg.GetName()))
}

func (a *adminService) Redrive(ctx context.Context, req *connect.Request[chutev1.RedriveRequest]) (*connect.Response[chutev1.RedriveResponse], error) {
	n, err := a.s.api.Redrive(ctx, req.Msg.GetDeadLetterQueue(), req.Msg.GetMax())
	return reply(&chutev1.RedriveResponse{Moved: n}, err)
}

// backuper is the capability behind Backup: the embedded broker has it
// (broker.(*Broker).Backup; its sink type is an alias of this interface
// literal, so the server names it without importing the broker). Any other
// chute.API (a client relaying to another server) answers Unimplemented.
type backuper interface {
	Backup(ctx context.Context, sink interface {
		BackupFile(name string, size int64, r io.Reader) error
	}) error
}

// backupChunkSize is the most file data one BackupChunk carries.
const backupChunkSize = 256 << 10

// Backup implements chute.v1.AdminService: it streams the broker's backup
// as chunks, file after file, manifest last. The broker pauses its
// publishes only for the snapshot; the rest is file I/O, paced by the
// stream's flow control. Server shutdown ends a backup in progress (the
// client then has no manifest, so the partial copy cannot be restored).
func (a *adminService) Backup(ctx context.Context, _ *connect.Request[chutev1.BackupRequest], stream *connect.ServerStream[chutev1.BackupChunk]) error {
	b, ok := a.s.api.(backuper)
	if !ok {
		return connect.NewError(connect.CodeUnimplemented, errors.New("this server's broker cannot be backed up over the API"))
	}
	a.s.streams.Add(1)
	defer a.s.streams.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.s.stop, cancel)
	defer stop()
	if err := b.Backup(ctx, &chunkSender{ctx: ctx, stream: stream}); err != nil {
		if a.s.stop.Err() != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("server shutting down: backup abandoned: %w", err))
		}
		return wire.ToConnect(err)
	}
	return nil
}

// chunkSender is the broker's backup sink: it cuts each file into chunks,
// and stops when ctx ends (the client went, or the server shuts down).
type chunkSender struct {
	ctx    context.Context
	stream *connect.ServerStream[chutev1.BackupChunk]
	buf    []byte
}

func (c *chunkSender) BackupFile(name string, size int64, r io.Reader) error {
	if c.buf == nil {
		c.buf = make([]byte, backupChunkSize)
	}
	var off int64
	for {
		n, err := io.ReadFull(r, c.buf[:min(int64(len(c.buf)), max(size-off, 0))])
		if n > 0 || off == 0 {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			if serr := c.stream.Send(&chutev1.BackupChunk{File: name, Offset: off, Data: c.buf[:n], Size: size}); serr != nil {
				return serr
			}
			off += int64(n)
		}
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF && off < size:
			return fmt.Errorf("backup %s: %d of %d bytes: %w", name, off, size, io.ErrUnexpectedEOF)
		case err != nil && err != io.EOF:
			return err
		case off >= size:
			return nil
		}
	}
}

func (a *adminService) ListConsumers(ctx context.Context, req *connect.Request[chutev1.ListConsumersRequest]) (*connect.Response[chutev1.ListConsumersResponse], error) {
	queue := req.Msg.GetQueue()
	if _, err := a.s.api.QueueStats(ctx, queue); err != nil {
		return nil, wire.ToConnect(err)
	}
	out := &chutev1.ListConsumersResponse{}
	for _, c := range a.s.Clients(queue) {
		if c.Consumer {
			out.Consumers++
		}
		if c.Producer {
			out.Producers++
		}
		out.Clients = append(out.Clients, &chutev1.QueueClient{
			ClientId: c.ClientID, Address: c.Address, Consumer: c.Consumer, Producer: c.Producer,
			ConsumeStreams: int32(c.ConsumeStreams), PublishStreams: int32(c.PublishStreams),
			Leases: c.Leases, LastSeen: timestamppb.New(c.LastSeen),
			PublishRate: c.PublishRate, ReceiveRate: c.ReceiveRate})
	}
	return connect.NewResponse(out), nil
}

func (a *adminService) ListAlerts(_ context.Context, _ *connect.Request[chutev1.ListAlertsRequest]) (*connect.Response[chutev1.ListAlertsResponse], error) {
	firing, resolved, enabled := a.s.Alerts()
	out := &chutev1.ListAlertsResponse{Enabled: enabled}
	for _, al := range firing {
		out.Firing = append(out.Firing, alertToPB(al))
	}
	for _, al := range resolved {
		out.Resolved = append(out.Resolved, alertToPB(al))
	}
	return connect.NewResponse(out), nil
}

func alertToPB(a alerts.Alert) *chutev1.Alert {
	ts := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	return &chutev1.Alert{Rule: a.Rule, Queue: a.Queue, Severity: string(a.Severity), Status: string(a.Status),
		Figure: string(a.Figure), Value: a.Value, Current: a.Current, Threshold: a.Threshold,
		Since: ts(a.Since), Started: ts(a.Started), Resolved: ts(a.Resolved), Summary: a.Summary}
}
