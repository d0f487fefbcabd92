package control

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linuxdiag/aod/internal/upload"
)

func TestUploadStatusRoundTrip(t *testing.T) {
	s, path := listen(t, nil)
	if _, err := UploadStatus(context.Background(), path); err == nil || !strings.Contains(err.Error(), "upload is off") {
		t.Fatalf("without an uploader: %v", err)
	}
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	want := upload.Status{
		Items: []upload.Item{{Bundle: "aod_quick_1_smb_latency.tar.zst", Destination: "s3", State: upload.StatePending,
			Attempts: 2, Reason: upload.ReasonServer, Error: "HTTP 500", NextAttempt: at, Since: at}},
		Destinations: []upload.DestinationStatus{{Name: "s3", PausedUntil: at, Trips: 1}},
	}
	s.SetUploadStatus(func() upload.Status { return want })
	got, err := UploadStatus(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
