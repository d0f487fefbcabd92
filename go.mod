module github.com/linuxdiag/aod

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	go.opentelemetry.io/collector/pdata v1.71.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
