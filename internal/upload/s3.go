package upload

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// S3Config is an S3 or S3-compatible destination. Credentials come from the
// SDK's standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a web
// identity token), the shared files under ~/.aws (Profile), ECS or EC2 instance
// metadata.
type S3Config struct {
	Bucket string
	Region string
	// Endpoint is an S3-compatible store's URL; "" is AWS's own.
	Endpoint  string
	PathStyle bool // bucket in the path, not the host name (most S3-compatible stores)
	Profile   string
	// HTTPClient replaces the SDK's (tests: a store on a Unix socket); nil: the SDK's.
	HTTPClient *http.Client
}

// NewS3 returns an S3 destination. It resolves the credential chain's
// configuration but makes no request.
func NewS3(ctx context.Context, c S3Config) (Destination, error) {
	if c.Bucket == "" {
		return nil, errors.New("upload: s3: bucket is not set")
	}
	opts := []func(*awsconfig.LoadOptions) error{
		// The uploader retries with its own backoff and breaker.
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(c.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("upload: s3: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("upload: s3: no region (set region, or AWS_REGION)")
	}
	cl := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		if c.HTTPClient != nil {
			o.HTTPClient = c.HTTPClient
		}
		// The SHA-256 checksum is computed here and sent; no trailing checksum
		// (aws-chunked), which not every S3-compatible store takes.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	base := c.Endpoint
	if base == "" {
		base = "https://s3." + cfg.Region + ".amazonaws.com"
	}
	return &s3Dest{cl: cl, bucket: c.Bucket, base: strings.TrimSuffix(base, "/")}, nil
}

type s3Dest struct {
	cl     *s3.Client
	bucket string
	base   string
}

func (d *s3Dest) Name() string { return "s3" }

func (d *s3Dest) URL(key string) string {
	return d.base + "/" + url.PathEscape(d.bucket) + "/" + (&url.URL{Path: key}).EscapedPath()
}

func (d *s3Dest) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, sum Digest) error {
	payload := hex.EncodeToString(sum.SHA256[:])
	_, err := d.cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(d.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   contentType(key),
		// The store checks both against what it received.
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum.SHA256[:])),
		ContentMD5:     aws.String(base64.StdEncoding.EncodeToString(sum.MD5[:])),
		IfNoneMatch:    aws.String("*"),
	}, func(o *s3.Options) {
		// The signature covers the payload's SHA-256, already known: without this
		// the SDK would read the whole bundle once more to compute it.
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("aodPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, payload), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	})
	var sc statusCoder
	if errors.As(err, &sc) {
		switch sc.HTTPStatusCode() {
		case 409, 412:
			return fmt.Errorf("%w: %v", ErrExists, err)
		}
	}
	return err
}
