package broker

import "context"

type holderKey struct{}

// WithHolder returns ctx naming who receives with it: the leases a Receive
// (or ReceiveAsync) with that context takes are reported as held by
// holder in GetMessage's MessageInfo.Holder. The server names the client
// (its Chute-Client-Id and address); an embedding program may name its
// worker. It costs one string per lease, kept in memory only.
func WithHolder(ctx context.Context, holder string) context.Context {
	return context.WithValue(ctx, holderKey{}, holder)
}

func holderOf(ctx context.Context) string {
	h, _ := ctx.Value(holderKey{}).(string)
	return h
}
