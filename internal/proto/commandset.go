package proto

import (
	"iter"
	"math/bits"
)

// CommandSet is a set of one protocol's command codes below MaxCommands, one bit per
// code. The zero value is empty. Has is a single bit test, cheap enough for every
// event.
type CommandSet [MaxCommands / 64]uint64

// With returns s plus code; codes at or over MaxCommands are ignored.
func (s CommandSet) With(code uint16) CommandSet {
	if code < MaxCommands {
		s[code>>6] |= 1 << (code & 63)
	}
	return s
}

// Without returns s minus code.
func (s CommandSet) Without(code uint16) CommandSet {
	if code < MaxCommands {
		s[code>>6] &^= 1 << (code & 63)
	}
	return s
}

// Has reports whether code is in s.
func (s CommandSet) Has(code uint16) bool {
	return code < MaxCommands && s[code>>6]&(1<<(code&63)) != 0
}

// Len returns the number of codes in s.
func (s CommandSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether s has no code.
func (s CommandSet) IsEmpty() bool { return s == CommandSet{} }

// SubsetOf reports whether every code of s is in t.
func (s CommandSet) SubsetOf(t CommandSet) bool {
	for i := range s {
		if s[i]&^t[i] != 0 {
			return false
		}
	}
	return true
}

// All yields the codes in s in ascending order.
func (s CommandSet) All() iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		for i, w := range s {
			for w != 0 {
				b := bits.TrailingZeros64(w)
				w &^= 1 << b
				if !yield(uint16(i*64 + b)) {
					return
				}
			}
		}
	}
}
