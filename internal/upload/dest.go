package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// Destination is an object store bundles are uploaded to.
type Destination interface {
	// Name identifies the destination in the state journal, metrics and logs
	// ("azure", "s3"); it must not change between runs.
	Name() string
	// Put stores size bytes of body under key unless an object of that name
	// exists: then it returns an error wrapping ErrExists and changes nothing. sum
	// lets the store verify what it received where it can. body may be read more
	// than once (seek to 0 first).
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, sum Digest) error
	// URL is the object's address, for logs and the anomaly's records.
	URL(key string) string
}

// Digest is a bundle's content digest, computed before its upload.
type Digest struct {
	SHA256 [32]byte
	MD5    [16]byte // what Azure checks (Content-MD5)
}

// ErrExists says the object is already in the store: a conditional create
// (If-None-Match: *) was refused with 409 or 412.
var ErrExists = errors.New("upload: object already exists")

// Reasons an attempt failed, the reason attribute of the failure metric.
const (
	ReasonAuth      = "auth"      // 401, 403: credentials or permissions
	ReasonNotFound  = "not_found" // 404: no such container or bucket
	ReasonThrottled = "throttled" // 429, 503
	ReasonServer    = "server"    // other 5xx
	ReasonClient    = "client"    // other 4xx: the request itself is refused
	ReasonTimeout   = "timeout"   // the upload timeout ran out
	ReasonNetwork   = "network"   // no response: connection refused, reset, DNS
	ReasonLocal     = "local"     // reading the bundle or writing the state failed
)

// statusCoder is what the SDKs' response errors have in common.
type statusCoder interface{ HTTPStatusCode() int }

// StatusError is a store's refusal with its HTTP status.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %v", e.Status, e.Err) }
func (e *StatusError) Unwrap() error { return e.Err }

// HTTPStatusCode returns the status, so StatusError classifies like the SDKs' errors.
func (e *StatusError) HTTPStatusCode() int { return e.Status }

// classify returns why err happened and whether trying again can help.
func classify(err error) (reason string, retry bool) {
	var sc statusCoder
	if errors.As(err, &sc) && sc.HTTPStatusCode() > 0 {
		switch s := sc.HTTPStatusCode(); {
		case s == 401 || s == 403:
			return ReasonAuth, true // after the breaker's cooldown
		case s == 404:
			return ReasonNotFound, true
		case s == 408:
			return ReasonTimeout, true
		case s == 429 || s == 503:
			return ReasonThrottled, true
		case s >= 500:
			return ReasonServer, true
		default:
			return ReasonClient, false
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout, true
	case errors.Is(err, os.ErrNotExist):
		return ReasonLocal, false
	}
	return ReasonNetwork, true
}

// tripsBreaker says a failure is the destination's, not the bundle's: every other
// bundle would fail the same way until someone fixes the credentials or creates
// the container.
func tripsBreaker(reason string) bool { return reason == ReasonAuth || reason == ReasonNotFound }
