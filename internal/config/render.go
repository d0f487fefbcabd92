package config

import (
	"bytes"
	"maps"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/linuxdiag/aod/internal/anomaly"
)

// YAML renders c as a complete configuration file in the 2026 form, every default
// written out. Parsing the result gives a Config equal to c.
func (c *Config) YAML() ([]byte, error) {
	o := &c.Telemetry.OTLP
	headers := mapNode()
	for _, k := range slices.Sorted(maps.Keys(o.Headers)) {
		headers.Content = append(headers.Content, strNode(k), strNode(o.Headers[k]))
	}
	root := mapNode(
		strNode("watch_interval_sec"), numNode(seconds.format(int64(c.WatchInterval))),
		strNode("aod_output_dir"), strNode(c.OutputDir),
		strNode("anomalies"), renderAnomalies(&c.Anomalies),
		strNode("cleanup"), mapNode(
			strNode("cleanup_interval_sec"), numNode(seconds.format(int64(c.Cleanup.Interval))),
			strNode("max_log_age_days"), numNode(days.format(int64(c.Cleanup.MaxAge))),
			strNode("max_total_log_size_mb"), numNode(mebi.format(c.Cleanup.MaxTotalSize)),
		),
		strNode("telemetry"), mapNode(
			strNode("otlp"), mapNode(
				strNode("endpoint"), strNode(o.Endpoint),
				strNode("protocol"), strNode(o.Protocol),
				strNode("headers"), headers,
				strNode("compression"), strNode(o.Compression),
				strNode("timeout_sec"), numNode(seconds.format(int64(o.Timeout))),
				strNode("export_interval_sec"), numNode(seconds.format(int64(o.ExportInterval))),
				strNode("tls"), mapNode(
					strNode("insecure"), boolNode(o.TLS.Insecure),
					strNode("ca_file"), strNode(o.TLS.CAFile),
					strNode("cert_file"), strNode(o.TLS.CertFile),
					strNode("key_file"), strNode(o.TLS.KeyFile),
					strNode("server_name"), strNode(o.TLS.ServerName),
					strNode("insecure_skip_verify"), boolNode(o.TLS.InsecureSkipVerify),
				),
			),
			strNode("prometheus"), mapNode(strNode("listen"), strNode(c.Telemetry.Prometheus.Listen)),
			strNode("cardinality_limit"), intNode(c.Telemetry.CardinalityLimit),
		),
		strNode("detection"), mapNode(
			strNode("cooldown_sec"), numNode(seconds.format(int64(c.Detection.Cooldown))),
			strNode("latency_ceiling_ms"), numNode(millis.format(int64(c.Detection.LatencyCeiling))),
			strNode("max_events"), intNode(c.Detection.MaxEvents),
			strNode("io_filesystems"), strListNode(c.Detection.IOFileSystems, true),
		),
		strNode("collection"), mapNode(
			strNode("timeout_sec"), numNode(seconds.format(int64(c.Collection.Timeout))),
			strNode("lookback_sec"), numNode(seconds.format(int64(c.Collection.Lookback))),
			strNode("max_output_mb"), numNode(mebi.format(c.Collection.MaxOutput)),
			strNode("concurrency"), intNode(c.Collection.Concurrency),
		),
		strNode("bundle"), mapNode(
			strNode("zstd_level"), intNode(c.Bundle.ZstdLevel),
			strNode("min_free_mb"), numNode(mebi.format(c.Bundle.MinFree)),
			strNode("shutdown_dump"), boolNode(c.Bundle.ShutdownDump),
		),
		strNode("upload"), uploadNode(&c.Upload),
		strNode("workloads"), mapNode(
			strNode("cgroup_root"), strNode(c.Workloads.CgroupRoot),
			strNode("pod_log_dir"), strNode(c.Workloads.PodLogDir),
			strNode("container_log_dir"), strNode(c.Workloads.ContainerLogDir),
			strNode("metric_attributes"), boolNode(c.Workloads.MetricAttributes),
		),
	)
	return encode(root)
}

func encode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func renderAnomalies(a *Anomalies) *yaml.Node {
	out := mapNode()
	for _, proto := range protocols {
		p := a.protocol(proto)
		pn := mapNode()
		for _, typ := range p.Types() {
			var n *yaml.Node
			switch typ {
			case anomaly.TypeLatency:
				n = renderLatency(p.Latency)
			case anomaly.TypeError:
				n = renderError(p.Error)
			case anomaly.TypeSockconn:
				n = mapNode(
					strNode("tool"), strNode(p.Sockconn.Tool),
					strNode("acceptable_count"), intNode(p.Sockconn.AcceptableCount),
					strNode("actions"), renderActions(p.Sockconn.Actions),
				)
			}
			pn.Content = append(pn.Content, strNode(typ), n)
		}
		if len(pn.Content) > 0 {
			out.Content = append(out.Content, strNode(proto), pn)
		}
	}
	return out
}

func renderLatency(l *LatencyAnomaly) *yaml.Node {
	track := seqNode(false)
	for _, t := range l.TrackCommands {
		track.Content = append(track.Content, mapNode(
			strNode("command"), strNode(t.Command),
			strNode("threshold"), numNode(millis.format(int64(t.Threshold))),
		))
	}
	return mapNode(
		strNode("tool"), strNode(l.Tool),
		strNode("mode"), strNode(string(l.Mode)),
		strNode("acceptable_count"), intNode(l.AcceptableCount),
		strNode("default_threshold_ms"), numNode(millis.format(int64(l.DefaultThreshold))),
		strNode("track_commands"), track,
		strNode("exclude_commands"), strListNode(l.ExcludeCommands, false),
		strNode("actions"), renderActions(l.Actions),
	)
}

func renderError(e *ErrorAnomaly) *yaml.Node {
	n := mapNode(strNode("tool"), strNode(e.Tool))
	if e.Legacy && len(e.Rules) == 1 {
		r := e.Rules[0]
		n.Content = append(n.Content,
			strNode("acceptable_count"), intNode(r.AcceptableCount),
			strNode("track_commands"), strListNode(r.TrackCommands, false),
			strNode("track_errors"), strListNode(r.TrackErrors, false),
		)
	} else {
		rules := seqNode(false)
		for _, r := range e.Rules {
			rules.Content = append(rules.Content, mapNode(
				strNode("name"), strNode(r.Name),
				strNode("acceptable_count"), intNode(r.AcceptableCount),
				strNode("track_commands"), strListNode(r.TrackCommands, false),
				strNode("track_errors"), strListNode(r.TrackErrors, false),
			))
		}
		n.Content = append(n.Content, strNode("rules"), rules)
	}
	n.Content = append(n.Content, strNode("actions"), renderActions(e.Actions))
	return n
}

func renderActions(actions []Action) *yaml.Node {
	n := mapNode()
	for _, a := range actions {
		v := nullNode()
		if a.IsCapture() {
			v = strListNode(a.Args, true)
		}
		n.Content = append(n.Content, strNode(a.Name), v)
	}
	return n
}

func mapNode(kv ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: kv}
}

func seqNode(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func strListNode(items []string, flow bool) *yaml.Node {
	n := seqNode(flow)
	for _, s := range items {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func nullNode() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"} }

func intNode(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

// num renders a number formatted by quantity.format: an integer when it has no
// fraction, so the file reads like a hand-written one.
func numNode(text string) *yaml.Node {
	tag := "!!int"
	if bytes.ContainsAny([]byte(text), ".eE") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: text}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func uploadNode(u *Upload) *yaml.Node {
	n := mapNode(
		strNode("enabled"), boolNode(u.Enabled),
		strNode("prefix"), strNode(u.Prefix),
		strNode("concurrency"), intNode(u.Concurrency),
		strNode("bandwidth_mb_per_sec"), numNode(mebi.format(u.BandwidthBytes)),
		strNode("timeout_sec"), numNode(seconds.format(int64(u.Timeout))),
		strNode("min_backoff_sec"), numNode(seconds.format(int64(u.MinBackoff))),
		strNode("max_backoff_sec"), numNode(seconds.format(int64(u.MaxBackoff))),
		strNode("max_attempts"), intNode(u.MaxAttempts),
		strNode("breaker_cooldown_sec"), numNode(seconds.format(int64(u.BreakerCooldown))),
		strNode("scan_interval_sec"), numNode(seconds.format(int64(u.ScanInterval))),
	)
	if a := u.Azure; a != nil {
		m := mapNode(strNode("auth"), strNode(a.Auth))
		for _, kv := range [][2]string{{"account_url", a.AccountURL}, {"container", a.Container}, {"client_id", a.ClientID},
			{"secret_file", a.SecretFile}, {"secret_env", a.SecretEnv}} {
			if kv[1] != "" {
				m.Content = append(m.Content, strNode(kv[0]), strNode(kv[1]))
			}
		}
		n.Content = append(n.Content, strNode("azure"), m)
	}
	if s := u.S3; s != nil {
		m := mapNode(strNode("bucket"), strNode(s.Bucket), strNode("path_style"), boolNode(s.PathStyle))
		for _, kv := range [][2]string{{"region", s.Region}, {"endpoint", s.Endpoint}, {"profile", s.Profile}} {
			if kv[1] != "" {
				m.Content = append(m.Content, strNode(kv[0]), strNode(kv[1]))
			}
		}
		n.Content = append(n.Content, strNode("s3"), m)
	}
	return n
}
