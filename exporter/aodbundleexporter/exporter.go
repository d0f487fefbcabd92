package aodbundleexporter

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/linuxdiag/aod/exporter/bundler"
)

// scopeName is the instrumentation scope of the exporter's spans and metrics.
const scopeName = "github.com/linuxdiag/aod/exporter/aodbundleexporter"

type bundleExporter struct {
	b      *bundler.Bundler
	tracer trace.Tracer
	meter  metric.Meter
	reg    metric.Registration
}

func newBundleExporter(cfg *Config, set exporter.Settings) (*bundleExporter, error) {
	b, err := bundler.New(cfg.options(set.Logger))
	if err != nil {
		return nil, err
	}
	return &bundleExporter{b: b, tracer: set.TracerProvider.Tracer(scopeName),
		meter: set.MeterProvider.Meter(scopeName)}, nil
}

func (e *bundleExporter) start(context.Context, component.Host) error {
	if err := e.b.Start(); err != nil {
		return err
	}
	reg, err := registerMetrics(e.meter, e.b)
	e.reg = reg
	return err
}

func (e *bundleExporter) shutdown(ctx context.Context) error {
	var errs []error
	if e.reg != nil {
		errs = append(errs, e.reg.Unregister())
	}
	errs = append(errs, e.b.Shutdown(ctx))
	return errors.Join(errs...)
}

// consume hands every anomaly span to the bundler and returns at once.
func (e *bundleExporter) consume(_ context.Context, td ptrace.Traces) error {
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				a, ok := anomalyFromSpan(spans.At(k))
				if !ok {
					continue
				}
				err := e.b.Submit(a, func(rep bundler.Report, err error) { bundler.RecordSpans(e.tracer, &a, rep, err) })
				if err != nil {
					// Busy or shutting down: already counted and logged; the anomaly's
					// trace still says why it has no bundle.
					bundler.RecordSpans(e.tracer, &a, bundler.Report{}, err)
				}
			}
		}
	}
	return nil
}

// registerMetrics reports the bundler's counters through the component's meter.
func registerMetrics(m metric.Meter, b *bundler.Bundler) (metric.Registration, error) {
	bundles, err1 := m.Int64ObservableCounter("aod.bundles",
		metric.WithDescription("Bundles by outcome: written, failed, skipped_busy, skipped_low_space."))
	written, err2 := m.Int64ObservableCounter("aod.bundle.written_bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes of bundles written."))
	shrunk, err3 := m.Int64ObservableCounter("aod.bundles.shrunk",
		metric.WithDescription("Bundles written with smaller action limits to keep the free-space floor."))
	deleted, err4 := m.Int64ObservableCounter("aod.retention.deletions",
		metric.WithDescription("Files retention deleted: kind bundle (age or size) or temporary (left by an interrupted bundle)."))
	deletedBytes, err5 := m.Int64ObservableCounter("aod.retention.deleted_bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes retention freed."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	outcome := func(v string) metric.ObserveOption {
		return metric.WithAttributes(attribute.String("outcome", v))
	}
	kind := func(v string) metric.ObserveOption { return metric.WithAttributes(attribute.String("kind", v)) }
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := b.Stats()
		o.ObserveInt64(bundles, int64(s.Bundles), outcome("written"))
		o.ObserveInt64(bundles, int64(s.Failed), outcome("failed"))
		o.ObserveInt64(bundles, int64(s.SkippedBusy), outcome("skipped_busy"))
		o.ObserveInt64(bundles, int64(s.SkippedLowSpace), outcome("skipped_low_space"))
		o.ObserveInt64(written, int64(s.BundleBytes))
		o.ObserveInt64(shrunk, int64(s.Shrunk))
		o.ObserveInt64(deleted, int64(s.Retention.Deleted), kind("bundle"))
		o.ObserveInt64(deleted, int64(s.Retention.TempsRemoved), kind("temporary"))
		o.ObserveInt64(deletedBytes, int64(s.Retention.DeletedBytes+s.Retention.TempsRemovedSize))
		return nil
	}, bundles, written, shrunk, deleted, deletedBytes)
}
