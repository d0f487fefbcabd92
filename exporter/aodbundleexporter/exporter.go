package aodbundleexporter

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/collectorlog"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/upload"
)

type bundleExporter struct {
	log    *slog.Logger
	b      *bundler.Bundler
	up     *upload.Uploader // nil: upload off
	upReg  metric.Registration
	tracer trace.Tracer
	meter  metric.Meter
	reg    metric.Registration
}

func newBundleExporter(cfg *Config, set exporter.Settings) (*bundleExporter, error) {
	log := collectorlog.New(set.TelemetrySettings)
	e := &bundleExporter{log: log, tracer: set.TracerProvider.Tracer(bundler.ScopeName),
		meter: set.MeterProvider.Meter(bundler.ScopeName)}
	bo := cfg.options(log)
	if cfg.Upload.Enabled {
		uo, _, err := upload.FromConfig(context.Background(), &config.Config{OutputDir: cfg.OutputDir, Upload: cfg.Upload.agentUpload()}, log)
		if err != nil {
			return nil, err
		}
		if uo.OnOutcome, err = upload.NewDurationRecorder(e.meter, nil); err != nil {
			return nil, err
		}
		if e.up, err = upload.New(uo); err != nil {
			return nil, err
		}
		bo.Upload = e.up
	}
	b, err := bundler.New(bo)
	if err != nil {
		return nil, err
	}
	e.b = b
	return e, nil
}

func (e *bundleExporter) start(context.Context, component.Host) error {
	if err := e.b.Start(); err != nil {
		return err
	}
	reg, err := bundler.RegisterMetrics(e.meter, e.b.Stats)
	e.reg = reg
	if err != nil || e.up == nil {
		return err
	}
	e.up.Start()
	e.upReg, err = upload.RegisterMetrics(e.meter, e.up.Stats)
	return err
}

func (e *bundleExporter) shutdown(ctx context.Context) error {
	var errs []error
	if e.reg != nil {
		errs = append(errs, e.reg.Unregister())
	}
	if e.upReg != nil {
		errs = append(errs, e.upReg.Unregister())
	}
	errs = append(errs, e.b.Shutdown(ctx))
	if e.up != nil {
		errs = append(errs, e.up.Shutdown(ctx))
	}
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
				a, ok, err := anomalypdata.FromSpan(spans.At(k))
				if !ok {
					continue
				}
				if err != nil {
					// The bundle still gets the events that did decode.
					e.log.Warn("anomaly span has damaged events", "rule", a.Rule, "error", err)
				}
				err = e.b.Submit(a, func(rep bundler.Report, err error) { bundler.RecordSpans(e.tracer, &a, rep, err) })
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
