package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports (the kernel fixes what it
// exposes to userspace, whatever its internal HZ).
const clockTicks = 100

// cpuSeconds is the user + system CPU time the process has used so far.
func (p *proc) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("%s: read cpu time: %w", p.name, err)
	}
	s, err := parseStatCPU(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	return s, nil
}

// parseStatCPU reads utime + stime (fields 14 and 15) from a
// /proc/PID/stat line, in seconds. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: cpu field %q: %w", s, err)
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, nil
}

// cpuMeter measures the CPU seconds some processes use between start and
// perGiB.
type cpuMeter struct {
	procs  []*proc
	before []float64
}

func startCPU(procs []*proc) (*cpuMeter, error) {
	m := &cpuMeter{procs: procs}
	for _, p := range procs {
		s, err := p.cpuSeconds()
		if err != nil {
			return nil, err
		}
		m.before = append(m.before, s)
	}
	return m, nil
}

// perGiB is each process's CPU seconds since start per GiB moved, in the
// order of the processes given to startCPU.
func (m *cpuMeter) perGiB(bytes int64) ([]float64, error) {
	v := make([]float64, len(m.procs))
	for i, p := range m.procs {
		s, err := p.cpuSeconds()
		if err != nil {
			return nil, err
		}
		v[i] = (s - m.before[i]) / (float64(bytes) / (1 << 30))
	}
	return v, nil
}
