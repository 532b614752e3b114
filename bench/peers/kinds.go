package peers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// kind says how to run one sort of peer.
type kind struct {
	binary string // the server's executable, looked up by ensureInstalled
	pkg    string // the Debian package that provides it
	ports  int    // free ports it needs; the first is the client port
	// commands writes any configuration under p.Dir, fills in p's URL,
	// DataDir and Durability, and returns the processes to start, the
	// server last.
	commands func(bin string, p *Peer, ports []int) ([]command, error)
}

// kinds are the peers Start knows, by name.
var kinds = map[string]kind{
	NATS:     {binary: "nats-server", pkg: "nats-server", ports: 1, commands: natsCommands},
	Redis:    {binary: "redis-server", pkg: "redis-server", ports: 1, commands: redisCommands},
	RabbitMQ: {binary: "rabbitmq-server", pkg: "rabbitmq-server", ports: 3, commands: rabbitCommands},
	NATSR3:   {binary: "nats-server", pkg: "nats-server", ports: 6, commands: natsR3Commands},
}

// NATSDurability is what Peer.Durability says of nats-server 2.9 with
// JetStream file storage. 2.9 has no sync_interval option (2.10 added it,
// with "always"): the file store writes each message to its block file
// (the page cache) before the ack and fsyncs the blocks from a timer every
// 2 minutes. Seen with strace on Debian's 2.9.10: no fsync between
// publish and ack; the first fsyncs exactly 120 s after the stream was
// created. So an acked message survives a server crash but not a machine
// crash.
const NATSDurability = "no fsync before ack (file store fsynced every 2 min)"

// natsCommands runs nats-server with JetStream, its store under Dir/data,
// clients on 127.0.0.1 only, and no HTTP monitor, cluster or leaf ports
// (none is enabled unless asked for).
func natsCommands(bin string, p *Peer, ports []int) ([]command, error) {
	store := filepath.Join(p.Dir, "data")
	p.URL = "nats://" + p.Addr
	p.DataDir = filepath.Join(store, "jetstream")
	p.Durability = NATSDurability
	return []command{{name: "server", path: bin, args: []string{
		"-a", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-js", "-sd", store,
	}}}, nil
}

// NATSR3Durability is what Peer.Durability says of three clustered
// nats-server 2.9 with R3 streams: an ack once a quorum of the stream's
// replicas stored the message, none of them fsynced (NATSDurability).
const NATSR3Durability = "quorum of 3 stored before ack, no fsync (file store fsynced every 2 min)"

// natsR3Commands runs three nats-server with JetStream clustered on
// loopback: server i has its client port ports[i-1], its route port
// ports[2+i] and its store under Dir/data-i, and routes to the other two.
// Server 1, whose client port is Peer.Addr, starts last (Start waits on
// the last process).
func natsR3Commands(bin string, p *Peer, ports []int) ([]command, error) {
	p.URL = "nats://" + p.Addr
	p.DataDir = p.Dir
	p.Durability = NATSR3Durability
	var cmds []command
	for i := 3; i >= 1; i-- {
		var routes []string
		for j := 1; j <= 3; j++ {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[2+j]))
			}
		}
		cmds = append(cmds, command{name: fmt.Sprintf("server-%d", i), path: bin, args: []string{
			"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i-1]), "-js", "-sd", filepath.Join(p.Dir, fmt.Sprintf("data-%d", i)),
			"-n", fmt.Sprintf("n%d", i), "--cluster_name", "bench",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", ports[2+i]), "--routes", strings.Join(routes, ","),
		}})
	}
	return cmds, nil
}

// RedisDurability is what Peer.Durability says of Redis with appendfsync
// always: the AOF is written and fsynced once per event-loop turn, before
// the replies of the commands that turn ran are sent.
const RedisDurability = "fsync before reply (AOF, appendfsync always)"

// redisCommands runs redis-server with the AOF fsynced on every write,
// no RDB snapshots, bound to 127.0.0.1 only, in the foreground.
func redisCommands(bin string, p *Peer, ports []int) ([]command, error) {
	data := filepath.Join(p.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	p.URL = "redis://" + p.Addr
	p.DataDir = data
	p.Durability = RedisDurability
	return []command{{name: "server", path: bin, args: []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--protected-mode", "yes",
		"--dir", data, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", "",
	}}}, nil
}

// RabbitMQDurability is what Peer.Durability says of RabbitMQ with quorum
// queues (the adapter's queue type): a publisher confirm is sent once the
// message is in the Raft log's WAL and fsynced (fdatasync).
const RabbitMQDurability = "fsync before confirm (quorum queue, Ra WAL)"

// rabbitCommands runs epmd (ports[2]) in the foreground, then a RabbitMQ
// node named chutebench-PORT@localhost with AMQP on ports[0] and Erlang
// distribution on ports[1], every listener on 127.0.0.1, no plugins (so no
// management HTTP port), and its mnesia, logs, config and Erlang cookie
// (HOME) under Dir. The real script is run, not Debian's wrapper, which
// would su to the rabbitmq user and lose the environment.
func rabbitCommands(bin string, p *Peer, ports []int) ([]command, error) {
	if real := "/usr/lib/rabbitmq/bin/rabbitmq-server"; fileExists(real) {
		bin = real
	}
	epmd, err := exec.LookPath("epmd")
	if err != nil {
		if epmd = "/usr/bin/epmd"; !fileExists(epmd) {
			return nil, fmt.Errorf("epmd (Debian package erlang-base) not found: %w", err)
		}
	}
	d := p.Dir
	files := map[string]string{
		"rabbitmq-env.conf": "",      // instead of /etc/rabbitmq/rabbitmq-env.conf
		"enabled_plugins":   "[].\n", // no management plugin, no HTTP port
		"rabbitmq.conf":     "loopback_users.guest = true\n",
		"advanced.config":   "[].\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	p.URL = "amqp://guest:guest@" + p.Addr + "/"
	p.DataDir = filepath.Join(d, "mnesia")
	p.Durability = RabbitMQDurability
	epmdPort := strconv.Itoa(ports[2])
	env := []string{
		"HOME=" + d,
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(d, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME=chutebench-" + strconv.Itoa(ports[0]) + "@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(ports[0]),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(ports[1]),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT=" + epmdPort,
		"RABBITMQ_MNESIA_BASE=" + p.DataDir,
		"RABBITMQ_LOG_BASE=" + filepath.Join(d, "log"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(d, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(d, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(d, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR=" + filepath.Join(d, "plugins-expand"),
		"RABBITMQ_FEATURE_FLAGS_FILE=" + filepath.Join(d, "feature_flags"),
		"RABBITMQ_PID_FILE=" + filepath.Join(d, "rabbitmq.pid"),
		// Distribution listens on loopback only (by default it binds every
		// address), and the VM does not start an epmd of its own.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
	}
	return []command{
		{name: "epmd", path: epmd, args: []string{"-address", "127.0.0.1", "-port", epmdPort},
			env: []string{"ERL_EPMD_ADDRESS=127.0.0.1", "ERL_EPMD_PORT=" + epmdPort}},
		{name: "server", path: bin, env: env},
	}, nil
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
