package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/chutemq/chute/internal/wire"
)

// strictJSON is the Connect JSON codec with one change: a field the API
// does not have is refused (InvalidArgument, naming the field) instead of
// ignored. JSON is what people type (curl, scripts): a misspelled
// "queu" must not turn into `queue not found: ""` (issue 7). The binary
// protobuf codec, which programs use, keeps protobuf's rule of carrying
// unknown fields, so that a newer client still talks to an older server.
type strictJSON struct{ name string }

// jsonCodecs replace both names Connect registers for JSON.
func jsonCodecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(strictJSON{"json"}),
		connect.WithCodec(strictJSON{"json; charset=utf-8"}),
	}
}

func (c strictJSON) Name() string { return c.name }
func (strictJSON) IsBinary() bool { return false }

func (strictJSON) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	// A response may carry fields pre-encoded (wire.ConsumeDeliveries),
	// which protojson would leave out.
	pm, err := wire.KnownFields(pm)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(pm)
}

func (strictJSON) Unmarshal(data []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", m)
	}
	if len(data) == 0 {
		return errors.New("empty request: send a JSON object, {} at least")
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, pm); err != nil {
		// protojson names the field: `unknown field "queu"`.
		return fmt.Errorf("request %s: %w", pm.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

// MarshalStable is used for GET requests' cache keys.
func (c strictJSON) MarshalStable(m any) ([]byte, error) {
	b, err := c.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
