#!/usr/bin/env bash
# Run `chute bench run` against a fresh 3-node cluster on loopback (every
# node syncing always), as docs/replication.md's latency figures were
# measured, then stop the nodes.
#
# Usage: scripts/cluster-bench.sh [bench run flags…]
#   e.g. scripts/cluster-bench.sh --rate 2000 --duration 8s
#   CHUTE=path/to/chute uses that binary (default: build this repository's).
#   SERVE_FLAGS="--monitor-slack none" adds flags to every node's serve.
#   Ports 7501–7503 on 127.0.0.1; data under a temporary directory
#   (TMPDIR=/dev/shm puts the logs on tmpfs, where a sync costs nothing:
#   the same code without the disk's share of the latency).
#   After the run it prints each node's CPU time (from /proc, in ticks of
#   10 ms) and voluntary/involuntary context switches (all threads)
#   during it, as docs/replication.md's tenth session compared builds,
#   and each node's log syncs since it started (its metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

bin=${CHUTE:-}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$bin" ]; then
	bin=$work/chute
	go build -o "$bin" ./cmd/chute
fi

peers=1=http://127.0.0.1:7501,2=http://127.0.0.1:7502,3=http://127.0.0.1:7503
for i in 1 2 3; do
	"$bin" serve --listen 127.0.0.1:750$i --data "$work/d$i" --cluster-id bench --node-id $i \
		--cluster-peers $peers --log-level warn ${SERVE_FLAGS:-} 2>"$work/log$i" &
	pids+=($!)
done

# The leader is the node whose ListQueues answers 200 (a follower refuses).
leader=
for _ in $(seq 100); do
	for i in 1 2 3; do
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' \
			http://127.0.0.1:750$i/chute.v1.AdminService/ListQueues || true)
		if [ "$code" = 200 ]; then leader=$i; break 2; fi
	done
	sleep 0.1
done
if [ -z "$leader" ]; then
	echo "no leader within 10 s; logs in $work" >&2
	cat "$work"/log* >&2
	exit 1
fi
echo "leader: node $leader"
# usage prints, per node: CPU ticks and voluntary/involuntary switches.
usage() {
	for p in "${pids[@]}"; do
		cpu=$(awk '{print $14+$15}' /proc/$p/stat)
		sw=$(cat /proc/$p/task/*/status 2>/dev/null |
			awk '/^voluntary_ctxt/{v+=$2} /^nonvoluntary_ctxt/{n+=$2} END{print v, n}')
		echo "$cpu $sw"
	done
}
before=$(usage)
"$bin" bench run --server 127.0.0.1:750$leader "$@"
after=$(usage)
paste <(echo "$before") <(echo "$after") | awk -v leader=$leader '{
	printf "node %d%s: cpu %d ticks, context switches %d voluntary, %d involuntary\n",
		NR, NR == leader ? " (leader)" : "", $4-$1, $5-$2, $6-$3 }'
# Each node's log syncs since it started, from its metrics.
for i in 1 2 3; do
	curl -s http://127.0.0.1:750$i/metrics | awk -v node=$i '
		/^chute_cluster_log_syncs_total/ {s=$2}
		END {printf "node %d: %d log syncs since it started\n", node, s}'
done
