package peers

import (
	"slices"
	"strings"
	"testing"
)

// TestNATSR3Commands: three servers, each on its own client port, route
// port and store, routing to the other two; server 1 (Peer.Addr's) last.
func TestNATSR3Commands(t *testing.T) {
	p := &Peer{Addr: "127.0.0.1:1001", Dir: "/d"}
	cmds, err := natsR3Commands("nats-server", p, []int{1001, 1002, 1003, 2001, 2002, 2003})
	if err != nil || len(cmds) != 3 {
		t.Fatalf("%v, %d commands", err, len(cmds))
	}
	arg := func(c command, flag string) string {
		i := slices.Index(c.args, flag)
		if i < 0 || i+1 >= len(c.args) {
			t.Fatalf("%s: no %s in %q", c.name, flag, c.args)
		}
		return c.args[i+1]
	}
	if cmds[2].name != "server-1" || arg(cmds[2], "-p") != "1001" {
		t.Fatalf("last command %s on port %s, want server-1 on 1001", cmds[2].name, arg(cmds[2], "-p"))
	}
	seen := map[string]bool{}
	for _, c := range cmds {
		self := arg(c, "--cluster")
		routes := strings.Split(arg(c, "--routes"), ",")
		if len(routes) != 2 || slices.Contains(routes, self) {
			t.Fatalf("%s: routes %q with itself at %s", c.name, routes, self)
		}
		for _, k := range []string{arg(c, "-p"), self, arg(c, "-sd"), arg(c, "-n")} {
			if seen[k] {
				t.Fatalf("%s: %s shared with another server", c.name, k)
			}
			seen[k] = true
		}
	}
	if p.URL != "nats://127.0.0.1:1001" || p.Durability != NATSR3Durability {
		t.Fatalf("peer: %+v", p)
	}
}
