package aodbundleconnector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"

	"github.com/linuxdiag/aod/internal/anomaly"
	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/bundler"
	"github.com/linuxdiag/aod/internal/collectorlog"
	"github.com/linuxdiag/aod/internal/config"
	"github.com/linuxdiag/aod/internal/upload"
)

// bundleConnector writes the bundles of one aodbundle configuration and sends their
// records to the pipelines it feeds. The collector creates one connector per pair
// of signals (traces to traces, traces to logs); all of them share one
// bundleConnector (see shared), so an anomaly gets one bundle and one upload.
type bundleConnector struct {
	log   *slog.Logger
	b     *bundler.Bundler
	up    *upload.Uploader // nil: upload off
	rep   *upload.Reporter // with up: sends the upload records
	upReg metric.Registration
	meter metric.Meter
	reg   metric.Registration

	mu       sync.Mutex       // guards what follows
	traces   consumer.Traces  // nil: no traces to traces pipeline
	logs     consumer.Logs    // nil: no traces to logs pipeline
	resource pcommon.Resource // of the latest anomaly, for upload records
}

func newBundleConnector(cfg *Config, set connector.Settings) (*bundleConnector, error) {
	log := collectorlog.New(set.TelemetrySettings)
	c := &bundleConnector{log: log, meter: set.MeterProvider.Meter(bundler.ScopeName), resource: pcommon.NewResource()}
	bo := cfg.options(log)
	if cfg.Upload.Enabled {
		uo, _, err := upload.FromConfig(context.Background(), &config.Config{OutputDir: cfg.OutputDir, Upload: cfg.Upload.agentUpload()}, log)
		if err != nil {
			return nil, err
		}
		c.rep = upload.NewReporter(c.uploaded, log)
		if uo.OnOutcome, err = upload.NewDurationRecorder(c.meter, c.rep.Record); err != nil {
			c.rep.Close()
			return nil, err
		}
		if c.up, err = upload.New(uo); err != nil {
			c.rep.Close()
			return nil, err
		}
		bo.Upload = c.up
	}
	b, err := bundler.New(bo)
	if err != nil {
		if c.up != nil {
			err = errors.Join(err, c.up.Shutdown(context.Background()))
			c.rep.Close()
		}
		return nil, err
	}
	c.b = b
	return c, nil
}

func (c *bundleConnector) start(context.Context, component.Host) error {
	if err := c.b.Start(); err != nil {
		return err
	}
	reg, err := bundler.RegisterMetrics(c.meter, c.b.Stats)
	c.reg = reg
	if err != nil || c.up == nil {
		return err
	}
	c.up.Start()
	c.upReg, err = upload.RegisterMetrics(c.meter, c.up.Stats)
	return err
}

// shutdown stops the bundles, then the uploads, then the records of both.
func (c *bundleConnector) shutdown(ctx context.Context) error {
	var errs []error
	if c.reg != nil {
		errs = append(errs, c.reg.Unregister())
	}
	if c.upReg != nil {
		errs = append(errs, c.upReg.Unregister())
	}
	errs = append(errs, c.b.Shutdown(ctx))
	if c.up != nil {
		errs = append(errs, c.up.Shutdown(ctx))
		c.rep.Close()
	}
	return errors.Join(errs...)
}

// consume hands every anomaly span to the bundler and returns at once.
func (c *bundleConnector) consume(_ context.Context, td ptrace.Traces) error {
	for _, rs := range td.ResourceSpans().All() {
		var res pcommon.Resource // copied once, for the anomalies it holds
		copied := false
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				a, ok, err := anomalypdata.FromSpan(span)
				if !ok {
					continue
				}
				if err != nil {
					// The bundle still gets the events that did decode.
					c.log.Warn("anomaly span has damaged events", "rule", a.Rule, "error", err)
				}
				if !copied {
					copied, res = true, pcommon.NewResource()
					rs.Resource().CopyTo(res)
					c.mu.Lock()
					c.resource = res
					c.mu.Unlock()
				}
				err = c.b.Submit(a, func(rep bundler.Report, err error) { c.bundled(res, &a, rep, err) })
				if err != nil {
					// Busy or shutting down: already counted and logged; the anomaly's
					// trace still says why it has no bundle.
					c.bundled(res, &a, bundler.Report{}, err)
				}
			}
		}
	}
	return nil
}

// bundled sends a bundle's records (rep, or err when it was not written) down the
// pipelines, under the anomaly's resource.
func (c *bundleConnector) bundled(res pcommon.Resource, a *anomaly.Anomaly, rep bundler.Report, err error) {
	c.send(func() ptrace.Traces { return bundler.Traces(res, a, rep, err) },
		func() plog.Logs { return bundler.Logs(res, a, rep, err) }, "bundle")
}

// uploaded sends an upload's records, under the resource of the latest anomaly
// (the host's: an upload may end after a restart, before any anomaly).
func (c *bundleConnector) uploaded(o upload.Outcome) {
	c.mu.Lock()
	res := c.resource
	c.mu.Unlock()
	now := time.Now()
	c.send(func() ptrace.Traces { return upload.Traces(res, o, now) },
		func() plog.Logs { return upload.Logs(res, o, now) }, "upload")
}

// send builds and sends the records of the signals that have a pipeline. A
// refused record is logged: the bundle and the upload happened all the same.
func (c *bundleConnector) send(traces func() ptrace.Traces, logs func() plog.Logs, what string) {
	c.mu.Lock()
	tc, lc := c.traces, c.logs
	c.mu.Unlock()
	ctx := context.Background()
	if tc != nil {
		if err := tc.ConsumeTraces(ctx, traces()); err != nil {
			c.log.Warn(what+" spans not sent", "error", err)
		}
	}
	if lc != nil {
		if err := lc.ConsumeLogs(ctx, logs()); err != nil {
			c.log.Warn(what+" log record not sent", "error", err)
		}
	}
}
