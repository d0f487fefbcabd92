package upload

import (
	"bytes"
	"context"
	"io"

	"golang.org/x/time/rate"
)

// maxChunk is the most one read takes from the bandwidth budget at once: small
// enough that concurrent uploads share the budget fairly.
const maxChunk = 256 << 10

// limitedReader reads at most what the shared limiter allows. It seeks like the
// reader under it, since the SDKs rewind a body to sign or resend it.
type limitedReader struct {
	ctx context.Context
	r   io.ReadSeeker
	l   *rate.Limiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) > l.l.Burst() {
		p = p[:l.l.Burst()]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.l.WaitN(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (l *limitedReader) Seek(off int64, whence int) (int64, error) { return l.r.Seek(off, whence) }

func newBytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }
