//go:build linux

package aodreceiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receiverhelper"

	"github.com/linuxdiag/aod/bpf"
	"github.com/linuxdiag/aod/internal/collectorlog"
	"github.com/linuxdiag/aod/internal/ingest"
	"github.com/linuxdiag/aod/internal/nfs"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/ringreader"
	"github.com/linuxdiag/aod/internal/smb"
	"github.com/linuxdiag/aod/receiver/aodreceiver/internal/metadata"
)

// transport names the receiver's source in its own telemetry (obsreport).
const transport = "ebpf"

func start(ctx context.Context, host component.Host, a *aodReceiver) (runner, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             a.set.ID,
		Transport:              transport,
		LongLivedCtx:           true,
		ReceiverCreateSettings: a.set,
	})
	if err != nil {
		return nil, err
	}
	var cons ingest.Consumers
	if next := a.nextMetrics; next != nil {
		explicit := a.cfg.Histogram == HistogramExplicit
		cons.Metrics = func(ctx context.Context, exp, expl pmetric.Metrics) error {
			md := exp
			if explicit {
				md = expl
			}
			ctx = obs.StartMetricsOp(ctx)
			err := next.ConsumeMetrics(ctx, md)
			obs.EndMetricsOp(ctx, metadata.Type.String(), md.DataPointCount(), err)
			return err
		}
	}
	if next := a.nextLogs; next != nil {
		cons.Logs = func(ctx context.Context, ld plog.Logs) error {
			ctx = obs.StartLogsOp(ctx)
			err := next.ConsumeLogs(ctx, ld)
			obs.EndLogsOp(ctx, metadata.Type.String(), ld.LogRecordCount(), err)
			return err
		}
	}
	r, err := ingest.New(ingest.Settings{
		Config: ingest.Config{
			CollectionInterval: a.cfg.CollectionInterval,
			Exponential:        a.cfg.Histogram == HistogramExponential,
			Explicit:           a.cfg.Histogram == HistogramExplicit,
			Reader:             ringreader.Config{FlushInterval: a.cfg.FlushInterval},
			StaleAge:           a.cfg.StaleRequestAge,
			CardinalityLimit:   a.cfg.CardinalityLimit,
			Workloads: podattr.Options{CgroupRoot: a.cfg.Workloads.CgroupRoot, PodLogDir: a.cfg.Workloads.PodLogDir,
				ContainerLogDir: a.cfg.Workloads.ContainerLogDir},
			MetricWorkloads: a.cfg.Workloads.MetricAttributes,
		},
		Probes: ingest.ProbeConfig{
			Options:    bpf.Options{RingBytes: a.cfg.RingBufferBytes},
			Thresholds: (*[smb.NumCommands]bpf.Threshold)(a.cfg.SMB.thresholds(smb.Table)[:smb.NumCommands]),
			Errors:     a.cfg.SMB.errorFilter(smb.Table),
			NFS: ingest.NFSProbeConfig{
				Thresholds: a.cfg.NFS.thresholds(nfs.Table),
				Errors:     a.cfg.NFS.errorFilter(nfs.Table),
			},
		},
		Logger:  collectorlog.New(a.set.TelemetrySettings),
		Version: a.set.BuildInfo.Version,
		OnAttach: func(_ bpf.AttachReport, err error) {
			if err != nil {
				componentstatus.ReportStatus(host, componentstatus.NewPermanentErrorEvent(err))
			}
		},
	}, cons)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", metadata.Type.String(), err)
	}
	if err := r.Start(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", metadata.Type.String(), err)
	}
	return r, nil
}
