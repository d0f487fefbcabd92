package upload

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/linuxdiag/aod/internal/archive"
)

// DefaultPrefix starts every object name unless configured otherwise. AODv2 wrote
// under aodv2/v1/; aod's bundles have another layout inside (manifest.json,
// events.jsonl), so they go under their own prefix and tooling that reads
// AODv2's objects does not misread aod's. Set the prefix to aodv2/v1 to share
// AODv2's tree anyway.
const DefaultPrefix = "aod/v1"

// Object names, AODv2's layout under Prefix:
//
//	<prefix>/<host>/<YYYY-MM-DD>/<HHMMSS>Z-<protocol>-<type>-<sha256 first 16 hex>.tar.zst
//	<prefix>/<host>/<YYYY-MM-DD>/<HHMMSS>Z-<protocol>-<type>-<sha256 first 16 hex>.manifest.json
//
// The date and time are the bundle's (the anomaly's detection) in UTC. The digest
// makes the name a function of the content: a retry can only ever meet its own
// earlier upload, which the conditional create turns into "already there".
const (
	bundleExt   = ".tar.zst"
	manifestExt = ".manifest.json"
	digestChars = 16
)

// ObjectKey returns the name of bundle (a final bundle file name) with content
// digest sum under prefix for host, and the name of its manifest. ok is false for
// a name that is not an aod bundle's.
func ObjectKey(prefix, host, bundle string, sum [32]byte) (key, manifest string, ok bool) {
	b, ok := archive.ParseBundleName(bundle)
	if !ok {
		return "", "", false
	}
	t := b.Time.UTC()
	base := strings.Trim(prefix, "/")
	if base != "" {
		base += "/"
	}
	stem := base + safeSegment(host) + "/" + t.Format("2006-01-02") + "/" + t.Format("150405") + "Z-" +
		b.Protocol + "-" + b.Type + "-" + hex.EncodeToString(sum[:])[:digestChars]
	return stem + bundleExt, stem + manifestExt, true
}

// safeSegment keeps a host name to characters every store takes in a name
// segment.
func safeSegment(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 253 {
			break
		}
	}
	if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
		return "unknown-host"
	}
	return b.String()
}

// ManifestFormat is the format field of an uploaded bundle's sibling manifest.
const ManifestFormat = "aod.upload/v1"

// Manifest is the sibling .manifest.json written after its bundle: its presence
// says the bundle object is complete, and it carries the content digest to check
// a download against.
type Manifest struct {
	Format     string    `json:"format"`
	Object     string    `json:"object"`      // the bundle's object name
	Bundle     string    `json:"bundle"`      // its file name on the host
	Host       string    `json:"host"`        // as the host calls itself
	SHA256     string    `json:"sha256"`      // hex, of the whole object
	Bytes      int64     `json:"bytes"`       // the object's size
	Created    time.Time `json:"created"`     // the bundle's time (the anomaly's detection)
	UploadedAt time.Time `json:"uploaded_at"` // when its upload started
	Agent      string    `json:"agent"`       // aod's version
}

func (m *Manifest) encode() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}
