package storetest

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// AzuriteVersion is the Azurite `make setup` installs (it runs on Debian's Node 20).
const AzuriteVersion = "3.35.0"

// Azurite's well-known development account.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite starts Azurite's blob service on a free port of 127.0.0.1.
func Azurite(t testing.TB) *Server {
	t.Helper()
	bin := need(t, "azurite-blob", "AZURITE_BLOB", "npm install -g azurite@"+AzuriteVersion)
	s := &Server{t: t, bin: bin, Network: "tcp", Dir: t.TempDir()}
	s.args = []string{"--blobHost", "127.0.0.1", "--blobPort", "0", "--location", s.Dir,
		"--skipApiVersionCheck", "--disableTelemetry", "--silent"}
	s.start()
	// Restarts keep the port it chose.
	s.args[3] = portOf(s.Addr)
	t.Cleanup(s.Kill)
	return s
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}

// ConnectionString is the development account's connection string with the blob
// endpoint at url (the server's, or a proxy's in front of it).
func ConnectionString(url string) string {
	return "DefaultEndpointsProtocol=http;AccountName=" + AzuriteAccount + ";AccountKey=" + AzuriteKey +
		";BlobEndpoint=" + url + "/" + AzuriteAccount + ";"
}

// CreateContainer creates a container through the endpoint at url. Azurite
// persists its metadata every few seconds, so a SIGKILL can lose a container
// just created: for a server that is Killed or Restarted, the container is
// created again (if missing) after each restart.
func CreateContainer(t testing.TB, s *Server, url, name string) *container.Client {
	t.Helper()
	cc, err := container.NewClientFromConnectionString(ConnectionString(url), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	create := func() {
		_, err := cc.Create(context.Background(), nil)
		if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			t.Error(err)
		}
	}
	create()
	s.OnRestart = create
	return cc
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr }
