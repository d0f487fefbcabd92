package anomalypdata

import "crypto/rand"

// NewIDs draws a W3C-valid (non-zero) trace id and span id for a new root span, such
// as an anomaly's; its signature is that of detector.Env.NewIDs.
func NewIDs() (trace [16]byte, span [8]byte) {
	for trace == [16]byte{} {
		_, _ = rand.Read(trace[:]) // crypto/rand.Read never fails (it aborts the program)
	}
	return trace, NewSpanID()
}

// NewSpanID draws a W3C-valid (non-zero) span id, for spans built as pdata under an
// existing trace (an anomaly's bundle and actions).
func NewSpanID() (span [8]byte) {
	for span == [8]byte{} {
		_, _ = rand.Read(span[:])
	}
	return span
}
