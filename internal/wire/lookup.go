package wire

import (
	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// MessageRefToPB converts a message ref.
func MessageRefToPB(r chute.MessageRef) *chutev1.MessageRef {
	return &chutev1.MessageRef{Seq: r.Seq, Id: r.ID}
}

// MessageRefFromPB converts a message ref back.
func MessageRefFromPB(r *chutev1.MessageRef) chute.MessageRef {
	return chute.MessageRef{Seq: r.GetSeq(), ID: r.GetId()}
}

// MessageRefsFromPB converts message refs back.
func MessageRefsFromPB(rs []*chutev1.MessageRef) []chute.MessageRef {
	out := make([]chute.MessageRef, len(rs))
	for i, r := range rs {
		out[i] = MessageRefFromPB(r)
	}
	return out
}

// MessageRefsToPB converts message refs.
func MessageRefsToPB(rs []chute.MessageRef) []*chutev1.MessageRef {
	out := make([]*chutev1.MessageRef, len(rs))
	for i, r := range rs {
		out[i] = MessageRefToPB(r)
	}
	return out
}

// The wire enum numbers the states as chute does.
func stateToPB(s chute.MessageState) chutev1.MessageState { return chutev1.MessageState(s) }

func stateFromPB(s chutev1.MessageState) chute.MessageState {
	if _, ok := chutev1.MessageState_name[int32(s)]; !ok {
		return chute.MessageUnknown
	}
	return chute.MessageState(s)
}

// MessageInfoToPB converts a message lookup.
func MessageInfoToPB(m chute.MessageInfo) *chutev1.MessageInfo {
	out := &chutev1.MessageInfo{Queue: m.Queue, Seq: m.Seq, Id: m.ID, Key: m.Key, State: stateToPB(m.State),
		Priority: uint32(m.Priority), Published: ts(m.Published), DeliverAt: ts(m.DeliverAt),
		Deliveries: int32(m.Deliveries), KeyWaiting: m.KeyWaiting, LeaseDeadline: ts(m.LeaseDeadline),
		Holder: m.Holder, LastError: m.LastError, SettledAt: ts(m.SettledAt), Reason: m.Reason,
		MovedTo: m.MovedTo, MovedSeq: m.MovedSeq}
	if dl := m.DeadLetter; dl != nil {
		out.DeadLetter = &chutev1.DeadLetter{Source: dl.Source, Reason: dl.Reason, Deliveries: int32(dl.Deliveries),
			LastError: dl.LastError, Died: ts(dl.Died), SourceSeq: dl.SourceSeq}
	}
	return out
}

// MessageInfoFromPB converts a message lookup back.
func MessageInfoFromPB(m *chutev1.MessageInfo) chute.MessageInfo {
	out := chute.MessageInfo{Queue: m.GetQueue(), Seq: m.GetSeq(), ID: m.GetId(), Key: m.GetKey(),
		State: stateFromPB(m.GetState()), Priority: uint8(min(m.GetPriority(), 255)), Published: tm(m.GetPublished()),
		DeliverAt: tm(m.GetDeliverAt()), Deliveries: int(m.GetDeliveries()), KeyWaiting: m.GetKeyWaiting(),
		LeaseDeadline: tm(m.GetLeaseDeadline()), Holder: m.GetHolder(), LastError: m.GetLastError(),
		SettledAt: tm(m.GetSettledAt()), Reason: m.GetReason(), MovedTo: m.GetMovedTo(), MovedSeq: m.GetMovedSeq()}
	if dl := m.GetDeadLetter(); dl != nil {
		out.DeadLetter = &chute.DeadLetterInfo{Source: dl.GetSource(), Reason: dl.GetReason(),
			Deliveries: int(dl.GetDeliveries()), LastError: dl.GetLastError(), Died: tm(dl.GetDied()), SourceSeq: dl.GetSourceSeq()}
	}
	return out
}

// CancelResultsToPB converts cancel results (the error follows from the
// state: chute.CancelError).
func CancelResultsToPB(rs []chute.CancelResult) []*chutev1.CancelResult {
	out := make([]*chutev1.CancelResult, len(rs))
	for i, r := range rs {
		out[i] = &chutev1.CancelResult{Ref: MessageRefToPB(r.Ref), Seq: r.Seq, Cancelled: r.Cancelled, State: stateToPB(r.State)}
	}
	return out
}

// CancelResultsFromPB converts cancel results back.
func CancelResultsFromPB(rs []*chutev1.CancelResult) []chute.CancelResult {
	out := make([]chute.CancelResult, len(rs))
	for i, r := range rs {
		out[i] = chute.CancelResult{Ref: MessageRefFromPB(r.GetRef()), Seq: r.GetSeq(), Cancelled: r.GetCancelled(),
			State: stateFromPB(r.GetState())}
		if !r.GetCancelled() {
			out[i].Err = chute.CancelError(out[i].State)
		}
	}
	return out
}

// RedriveResultsToPB converts redrive results; the error goes as a
// Status, since the state alone does not tell a gone source from a full
// one.
func RedriveResultsToPB(rs []chute.RedriveResult) []*chutev1.RedriveMessageResult {
	out := make([]*chutev1.RedriveMessageResult, len(rs))
	for i, r := range rs {
		out[i] = &chutev1.RedriveMessageResult{Ref: MessageRefToPB(r.Ref), Seq: r.Seq, Moved: r.Moved,
			Queue: r.Queue, NewSeq: r.NewSeq, State: stateToPB(r.State)}
		if r.Err != nil {
			out[i].Error = ToStatus(r.Err)
		}
	}
	return out
}

// RedriveResultsFromPB converts redrive results back.
func RedriveResultsFromPB(rs []*chutev1.RedriveMessageResult) []chute.RedriveResult {
	out := make([]chute.RedriveResult, len(rs))
	for i, r := range rs {
		out[i] = chute.RedriveResult{Ref: MessageRefFromPB(r.GetRef()), Seq: r.GetSeq(), Moved: r.GetMoved(),
			Queue: r.GetQueue(), NewSeq: r.GetNewSeq(), State: stateFromPB(r.GetState())}
		if s := r.GetError(); s != nil {
			out[i].Err = FromStatus(s)
		} else if !r.GetMoved() {
			out[i].Err = chute.ErrMessageNotFound // (a server that sent no reason)
		}
	}
	return out
}
