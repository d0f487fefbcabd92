//go:build linux

package main

import (
	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Kernel structure sizes the map memory model uses (x86-64, Linux 6.x, no lockdep):
// the kernel's own accounting (map_mem_usage, fdinfo's memlock) adds them the same way.
const (
	pageSize      = 4096
	htabElemSize  = 48 // struct htab_elem, before the key
	htabBucket    = 16 // struct bucket: hlist_nulls_head + raw_spinlock_t
	llistNodeSize = 8
	ptrSize       = 8
	htabLockCount = 8 // HASHTAB_MAP_LOCK_COUNT: map_locked ints per CPU
	mapHeader     = 512
)

// mapBytes models the kernel memory of a map on a host with ncpu possible CPUs, with
// live entries in use for a hash map that allocates on insert (BPF_F_NO_PREALLOC).
func mapBytes(info *ebpf.MapInfo, ncpu int, live uint64) uint64 {
	key, val := roundUp8(uint64(info.KeySize)), roundUp8(uint64(info.ValueSize))
	n, cpus := uint64(info.MaxEntries), uint64(ncpu)
	switch info.Type {
	case ebpf.Array:
		if info.Flags&(1<<10) != 0 { // BPF_F_MMAPABLE: whole pages
			return mapHeader + (n*val+pageSize-1)/pageSize*pageSize
		}
		return mapHeader + n*val
	case ebpf.PerCPUArray:
		return mapHeader + n*ptrSize + n*val*cpus
	case ebpf.RingBuf:
		return mapHeader + n + 2*pageSize // data pages and the two meta pages
	case ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash:
		percpu := info.Type == ebpf.PerCPUHash || info.Type == ebpf.LRUCPUHash
		lru := info.Type == ebpf.LRUHash || info.Type == ebpf.LRUCPUHash
		elem := htabElemSize + key
		if percpu {
			elem += ptrSize
		} else {
			elem += val
		}
		usage := mapHeader + htabBucket*roundUpPow2(n) + 4*cpus*htabLockCount
		if info.Flags&unix.BPF_F_NO_PREALLOC != 0 && !lru {
			usage += (elem + llistNodeSize) * live
			if percpu {
				usage += (llistNodeSize + val) * cpus * live
			}
			return usage
		}
		entries := n
		if !percpu && !lru {
			entries += cpus
		}
		usage += elem * entries
		if percpu {
			usage += val * cpus * entries
		} else if !lru {
			usage += ptrSize * cpus
		}
		return usage
	}
	return mapHeader + n*(key+val)
}

func roundUp8(n uint64) uint64 { return (n + 7) &^ 7 }

func roundUpPow2(n uint64) uint64 {
	p := uint64(1)
	for p < n {
		p <<= 1
	}
	return p
}
