package dracuttrace

// StraceArgs is the command line prefix that traces what follows it into
// out: strace following every process, stopping them only at Calls
// (--seccomp-bpf: not at every system call), with paths for descriptors
// (-y). Pin it to one CPU (see package cpupin): tracer and tracee then hand
// over without a cross-CPU wake-up.
func StraceArgs(out string) []string {
	return []string{"strace", "-f", "--seccomp-bpf", "-y", "-qq", "-s", "4096", "-e", "trace=" + Calls, "-o", out}
}
