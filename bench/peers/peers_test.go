package peers_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/bench/peers"
	"github.com/chutemq/chute/bench/peers/peerstest"
)

func TestStartStop(t *testing.T) {
	for _, kind := range peers.Kinds {
		t.Run(kind, func(t *testing.T) {
			p := peerstest.Start(t, kind)
			if p.PID <= 0 || p.URL == "" || p.Durability == "" || p.DataDir == "" {
				t.Fatalf("incomplete peer: %+v", p)
			}
			// PID is the server itself (memory figures read it), not a
			// script that started it.
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.PID))
			want := map[string]string{peers.NATS: "nats-server", peers.Redis: "redis-server", peers.RabbitMQ: "beam.smp"}[kind]
			if err != nil || strings.TrimSpace(string(comm)) != want {
				t.Fatalf("PID %d is %q (%v), want %s", p.PID, comm, err, want)
			}
			if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err != nil {
				t.Fatalf("client port: %v", err)
			} else {
				c.Close()
			}
			pids := p.Processes()
			if len(pids) == 0 {
				t.Fatal("no processes")
			}
			// Every listening socket of the server's processes is on
			// loopback (RabbitMQ has three: AMQP, distribution, epmd).
			listeners := listening(t, pids)
			if len(listeners) == 0 {
				t.Fatalf("found no listening socket of %v", pids)
			}
			for _, a := range listeners {
				if !a.IP.IsLoopback() {
					t.Errorf("listening on %v, not loopback", a)
				}
			}
			t.Logf("pids %v listening on %v", pids, listeners)

			start := time.Now()
			if err := p.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
			if err := p.Stop(); err != nil {
				t.Fatalf("second stop: %v", err)
			}
			if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts after Stop", p.Addr)
			}
			for _, a := range listeners {
				if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
					c.Close()
					t.Errorf("%v still accepts after Stop", a)
				}
			}
			for _, pid := range pids {
				if peers.Alive(pid) {
					t.Errorf("process %d survives Stop", pid)
				}
			}
		})
	}
}

func TestStartUnknown(t *testing.T) {
	if _, err := peers.Start(context.Background(), "kafka", t.TempDir()); err == nil {
		t.Fatal("started an unknown kind")
	}
}

// listening returns the addresses of the TCP sockets in LISTEN state that
// the processes pids hold open, from /proc/PID/fd and /proc/net/tcp{,6}.
func listening(t *testing.T, pids []int) []*net.TCPAddr {
	t.Helper()
	inodes := map[string]bool{}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			l, err := os.Readlink(dir + "/" + e.Name())
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	var out []*net.TCPAddr
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fld := strings.Fields(sc.Text())
			if len(fld) < 10 || fld[3] != "0A" || !inodes[fld[9]] { // 0A: LISTEN
				continue
			}
			if a := parseProcAddr(fld[1]); a != nil {
				out = append(out, a)
			}
		}
		f.Close()
	}
	return out
}

// parseProcAddr decodes /proc/net/tcp's "HEXIP:HEXPORT", where the IP is
// in 32-bit words of host (little-endian) byte order.
func parseProcAddr(s string) *net.TCPAddr {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return nil
	}
	b, err := hex.DecodeString(ipHex)
	if err != nil || len(b)%4 != 0 {
		return nil
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return nil
	}
	return &net.TCPAddr{IP: net.IP(b), Port: int(port)}
}
