package upload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azure authentication methods.
const (
	AzureManagedIdentity  = "managed_identity"  // the VM's or a user-assigned identity (ClientID)
	AzureWorkloadIdentity = "workload_identity" // Kubernetes workload identity (AZURE_* variables)
	AzureSAS              = "sas"               // a container SAS URL, from the secret
	AzureConnectionString = "connection_string" // from the secret
)

// AzureAuths lists the Azure authentication methods.
var AzureAuths = []string{AzureManagedIdentity, AzureWorkloadIdentity, AzureSAS, AzureConnectionString}

// AzureConfig is an Azure Blob Storage destination.
type AzureConfig struct {
	// AccountURL is https://<account>.blob.core.windows.net, for the identities.
	AccountURL string
	Container  string
	Auth       string // AzureManagedIdentity, ...
	ClientID   string // a user-assigned managed identity; "" for the system-assigned one
	// Secret is the SAS URL or the connection string, read from a file or an
	// environment variable so that it never stands in the configuration.
	Secret Secret
}

// NewAzure returns an Azure Blob Storage destination. It makes no request.
func NewAzure(c AzureConfig) (Destination, error) {
	// The uploader retries with its own backoff and breaker; SDK retries would hide
	// failures from them and stretch the upload timeout.
	opts := &container.ClientOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	var (
		cc  *container.Client
		err error
	)
	switch c.Auth {
	case AzureManagedIdentity, AzureWorkloadIdentity:
		if c.AccountURL == "" || c.Container == "" {
			return nil, errors.New("upload: azure: account_url and container are needed with " + c.Auth)
		}
		var cred azcore.TokenCredential
		if c.Auth == AzureManagedIdentity {
			o := &azidentity.ManagedIdentityCredentialOptions{}
			if c.ClientID != "" {
				o.ID = azidentity.ClientID(c.ClientID)
			}
			cred, err = azidentity.NewManagedIdentityCredential(o)
		} else {
			cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientID: c.ClientID})
		}
		if err != nil {
			return nil, fmt.Errorf("upload: azure: %w", err)
		}
		cc, err = container.NewClient(strings.TrimSuffix(c.AccountURL, "/")+"/"+url.PathEscape(c.Container), cred, opts)
	case AzureSAS:
		sas, serr := c.Secret.Read()
		if serr != nil {
			return nil, fmt.Errorf("upload: azure: SAS URL: %w", serr)
		}
		cc, err = container.NewClientWithNoCredential(sas, opts)
	case AzureConnectionString:
		cs, serr := c.Secret.Read()
		if serr != nil {
			return nil, fmt.Errorf("upload: azure: connection string: %w", serr)
		}
		if c.Container == "" {
			return nil, errors.New("upload: azure: container is needed with a connection string")
		}
		cc, err = container.NewClientFromConnectionString(cs, c.Container, opts)
	default:
		return nil, fmt.Errorf("upload: azure: auth %q; allowed: %s", c.Auth, strings.Join(AzureAuths, ", "))
	}
	if err != nil {
		// The SDK's message may quote the secret: name the problem only.
		return nil, fmt.Errorf("upload: azure: the %s does not make a client (check its form)", c.Auth)
	}
	return &azureDest{cc: cc}, nil
}

type azureDest struct{ cc *container.Client }

func (a *azureDest) Name() string { return "azure" }

// URL is the blob's URL without a SAS query, so no secret reaches a log.
func (a *azureDest) URL(key string) string {
	u, err := url.Parse(a.cc.URL())
	if err != nil {
		return key
	}
	u.RawQuery = ""
	return strings.TrimSuffix(u.String(), "/") + "/" + (&url.URL{Path: key}).EscapedPath()
}

func (a *azureDest) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, sum Digest) error {
	anyTag := azcore.ETagAny
	_, err := a.cc.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(body), &blockblob.UploadOptions{
		// One Put Blob (up to 5000 MiB): the service checks the Content-MD5 of what
		// it received and stores it as the blob's.
		TransactionalValidation: blob.TransferValidationTypeMD5(sum.MD5[:]),
		HTTPHeaders:             &blob.HTTPHeaders{BlobContentType: contentType(key), BlobContentMD5: sum.MD5[:]},
		AccessConditions:        &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyTag}},
	})
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode == 409 || re.StatusCode == 412 {
			return fmt.Errorf("%w: %s", ErrExists, re.ErrorCode)
		}
		return &StatusError{Status: re.StatusCode, Err: fmt.Errorf("azure: %s", cmp.Or(re.ErrorCode, "no error code"))}
	}
	return err
}

func contentType(key string) *string {
	t := "application/zstd"
	if strings.HasSuffix(key, manifestExt) {
		t = "application/json"
	}
	return &t
}
