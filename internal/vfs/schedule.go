package vfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
)

// Fault schedules: which system call fails, and how, decided in advance
// from a seed, so that a failing run is reproduced by its seed alone.
//
// The idea is pebble's vfs/errorfs (an injector that fires on the Nth
// call of an operation, filtered by path), cut down to what the journal
// and the broker do: a Schedule is a list of Rules, each counting the
// calls it matches and failing the Nth (and the Repeat-1 after it, for a
// fault that persists, as a full disk does). It plugs into Faulty as its
// inject function and records what it fired, for the test's report.

// FaultKind is what a Rule does to the call it fires on.
type FaultKind uint8

const (
	// FaultEIO fails the call with an I/O error (ErrInjected), having done
	// nothing: a failed write stores nothing, a failed sync syncs nothing.
	FaultEIO FaultKind = iota
	// FaultShortWrite fails a write with an I/O error after storing the
	// first Keep of its buffer; on any other call it is FaultEIO.
	FaultShortWrite
	// FaultNoSpace fails the call with ENOSPC; a write stores the first
	// Keep of its buffer first (what fitted).
	FaultNoSpace
)

func (k FaultKind) String() string {
	switch k {
	case FaultEIO:
		return "eio"
	case FaultShortWrite:
		return "short"
	case FaultNoSpace:
		return "nospace"
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

// Rule fails calls of one operation.
type Rule struct {
	Op Op
	// N is the first call that fails, counting from 1 the calls this rule
	// matches (its Op, on a file matching Path) since the schedule was
	// made.
	N int
	// Repeat is how many matching calls fail from the Nth on; 0 means 1.
	Repeat int
	Kind   FaultKind
	// Keep is the part (0 to 1) of a write's buffer stored before it
	// fails, for FaultShortWrite and FaultNoSpace.
	Keep float64
	// Path is a path.Match pattern for the base name of the file (or
	// directory) the call is about; "" matches every name.
	Path string
}

func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%d %s", r.Op, r.N, r.Kind)
	if r.Op == OpWrite && r.Kind != FaultEIO {
		fmt.Fprintf(&b, " keep=%.2f", r.Keep)
	}
	if r.Repeat > 1 {
		fmt.Fprintf(&b, " x%d", r.Repeat)
	}
	if r.Path != "" {
		fmt.Fprintf(&b, " on %s", r.Path)
	}
	return b.String()
}

func (r Rule) matches(op Op, name string) bool {
	if op != r.Op {
		return false
	}
	if r.Path == "" {
		return true
	}
	ok, err := path.Match(r.Path, path.Base(name))
	return ok && err == nil
}

// err is the error the rule's fault returns for a call on name.
func (r Rule) err(op Op, name string) error {
	cause := error(ErrInjected)
	if r.Kind == FaultNoSpace {
		cause = syscall.ENOSPC
	}
	err := &os.PathError{Op: op.String(), Path: name, Err: cause}
	if op != OpWrite {
		return err
	}
	keep := 0.0
	if r.Kind != FaultEIO {
		keep = r.Keep
	}
	return &WriteFault{Keep: keep, Err: err}
}

// Fired is one fault a Schedule injected.
type Fired struct {
	Rule Rule
	Name string // the file the failed call was about
	Call int    // which matching call it was
}

// Schedule is a Faulty inject function that fails the calls its rules
// pick. It is safe for concurrent use; with concurrent callers, which
// call is the Nth depends on their interleaving.
type Schedule struct {
	mu    sync.Mutex
	rules []Rule
	calls []int // per rule: matching calls seen
	fired []Fired
}

// NewSchedule returns a schedule of rules.
func NewSchedule(rules ...Rule) *Schedule {
	return &Schedule{rules: rules, calls: make([]int, len(rules))}
}

// Inject is the function to give Faulty (NewFaulty or SetInject).
func (s *Schedule) Inject(op Op, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fail error
	for i, r := range s.rules {
		if !r.matches(op, name) {
			continue
		}
		s.calls[i]++
		n := s.calls[i]
		if n >= r.N && n < r.N+max(r.Repeat, 1) && fail == nil {
			fail = r.err(op, name)
			s.fired = append(s.fired, Fired{Rule: r, Name: name, Call: n})
		}
	}
	return fail
}

// Fired lists the faults injected so far, in order.
func (s *Schedule) Fired() []Fired {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Fired(nil), s.fired...)
}

// Rules returns the schedule's rules.
func (s *Schedule) Rules() []Rule { return append([]Rule(nil), s.rules...) }

func (s *Schedule) String() string {
	parts := make([]string, len(s.rules))
	for i, r := range s.rules {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// Calls bounds the N of random rules: about how many calls of each
// operation the workload makes, so that most rules fire. Operations
// missing from it are not picked.
type Calls map[Op]int

// RandomSchedule makes a schedule of n rules from rng: an operation from
// those in calls (writes and syncs, the journal's own calls, twice as
// often as the others), the Nth call of it (1 to calls[op]), and a fault
// that suits it — an I/O error, a short write, or a full disk (which on a
// write may persist for a few calls).
func RandomSchedule(rng *rand.Rand, n int, calls Calls) *Schedule {
	var ops []Op
	for op := range numOps {
		if calls[op] <= 0 {
			continue
		}
		ops = append(ops, op)
		if op == OpWrite || op == OpSync {
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		return NewSchedule()
	}
	rules := make([]Rule, 0, n)
	for range n {
		op := ops[rng.IntN(len(ops))]
		r := Rule{Op: op, N: 1 + rng.IntN(calls[op]), Kind: FaultEIO}
		switch op {
		case OpWrite:
			switch x := rng.IntN(10); {
			case x < 4:
				r.Kind, r.Keep = FaultShortWrite, rng.Float64()
			case x < 6:
			default:
				r.Kind, r.Repeat = FaultNoSpace, 1+rng.IntN(4)
				if rng.IntN(2) == 0 {
					r.Keep = rng.Float64()
				}
			}
		case OpSync, OpCreate, OpPreallocate:
			if rng.IntN(3) == 0 {
				r.Kind = FaultNoSpace
			}
		}
		rules = append(rules, r)
	}
	return NewSchedule(rules...)
}
