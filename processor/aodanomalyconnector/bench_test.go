package aodanomalyconnector

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/linuxdiag/aod/internal/event"
)

// BenchmarkConsumeLogs measures the collector path per record: decoding the
// receiver's records and running the detectors (the records are built once).
func BenchmarkConsumeLogs(b *testing.B) {
	c, err := NewFactory().CreateLogsToTraces(context.Background(), settings(), fileConfig(nil), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	events := make([]event.Event, 256)
	for i := range events {
		events[i] = slow(uint16(i%19), time.Second+time.Duration(i)*time.Microsecond, time.Duration(10+i%40)*time.Millisecond)
	}
	ld := logsOf(events...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds()/1e6, "Mrecords/s")
}
