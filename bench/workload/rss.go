package workload

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// RSS returns this process's resident set size and its peak, in bytes.
func RSS() (cur, peak int64, err error) { return ProcessRSS("self") }

// ProcessRSS returns the resident set size and its peak of process pid
// ("self" for this one), from /proc (Linux only).
func ProcessRSS(pid string) (cur, peak int64, err error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			cur = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return cur, peak, sc.Err()
}
