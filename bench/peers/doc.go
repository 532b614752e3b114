// Package peers starts and stops the brokers chute is compared with (issue
// 11): NATS JetStream, Redis and RabbitMQ, each as a child process of the
// comparison, bound to 127.0.0.1 only, on free ports, with its data in a
// directory the caller owns, and with the most durable settings its
// Debian package offers.
//
// The comparison must be reproducible on a fresh machine, so Start installs
// a missing server from Debian's packages (apt-get) before it runs it, and
// it must leave nothing behind, so Stop ends the server by PID and process
// group (SIGTERM, then SIGKILL after 10 s), kills any descendant that
// escaped the group (Erlang's port helpers start their own sessions), and
// waits until every process has exited. RabbitMQ's epmd, which the Erlang VM
// would otherwise start as a daemon outliving the node, is started by Start
// in the foreground as a second child, so that it is owned and stopped too.
//
// Each Peer reports its Durability: whether the server fsyncs a message
// before it confirms it. With these settings Redis (appendfsync always) and
// RabbitMQ (quorum queues) do; NATS 2.9 does not (see Peer.Durability).
package peers
