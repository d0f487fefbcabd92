// Package dashboards is aod's Grafana dashboard (aod-smb.json) and Prometheus alert
// rules (alerts.yaml), described in docs/dashboards.md. It has no code: its tests check
// both files structurally, and against a real Prometheus scraping real aod agents whose
// BPF programs the tests drive.
package dashboards
