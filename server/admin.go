package server

import (
	"context"

	"connectrpc.com/connect"

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
	return reply(&chutev1.CreateQueueResponse{}, a.s.api.CreateQueue(ctx, m.GetName(), wire.QueueConfigFromPB(m.GetConfig())))
}

func (a *adminService) UpdateQueue(ctx context.Context, req *connect.Request[chutev1.UpdateQueueRequest]) (*connect.Response[chutev1.UpdateQueueResponse], error) {
	m := req.Msg
	return reply(&chutev1.UpdateQueueResponse{}, a.s.api.UpdateQueue(ctx, m.GetName(), wire.QueueConfigFromPB(m.GetConfig())))
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
	return connect.NewResponse(&chutev1.GetQueueResponse{Queue: wire.QueueStatsToPB(st)}), nil
}

func (a *adminService) ListQueues(ctx context.Context, _ *connect.Request[chutev1.ListQueuesRequest]) (*connect.Response[chutev1.ListQueuesResponse], error) {
	qs, err := a.s.api.Queues(ctx)
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	out := &chutev1.ListQueuesResponse{Queues: make([]*chutev1.QueueStats, len(qs))}
	for i, q := range qs {
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
	return reply(&chutev1.SubscribeResponse{}, a.s.api.Subscribe(ctx, m.GetTopic(), m.GetName(),
		subscriptionConfig(m)))
}

func (a *adminService) Unsubscribe(ctx context.Context, req *connect.Request[chutev1.UnsubscribeRequest]) (*connect.Response[chutev1.UnsubscribeResponse], error) {
	return reply(&chutev1.UnsubscribeResponse{}, a.s.api.Unsubscribe(ctx, req.Msg.GetTopic(), req.Msg.GetName()))
}

func (a *adminService) Redrive(ctx context.Context, req *connect.Request[chutev1.RedriveRequest]) (*connect.Response[chutev1.RedriveResponse], error) {
	n, err := a.s.api.Redrive(ctx, req.Msg.GetDeadLetterQueue(), req.Msg.GetMax())
	return reply(&chutev1.RedriveResponse{Moved: n}, err)
}
