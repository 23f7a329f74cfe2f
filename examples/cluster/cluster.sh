#!/bin/sh
# examples/cluster/cluster.sh: calypsod shards behind twemproxy (Debian's
# nutcracker) on one machine, on free loopback ports, for trying the setup
# out and for `make demo-cluster`. Each process is stopped by its pid.
#
#   cluster.sh start DIR [N]  starts N shards (default 3; --sync always, each
#                             its database DIR/shardI/db) and the proxy, with
#                             DIR/nutcracker.yml from nutcracker.yml.in; waits
#                             until every one answers PING; prints the ports
#   cluster.sh stop DIR       stops them (SIGTERM to the pids in DIR/*.pid)
#   cluster.sh counts DIR     the number of keys on each shard, asked of the
#                             shard itself (DBSIZE)
#   cluster.sh demo DIR       start; 10,000 keys (MSET) and one hash tag's keys
#                             written through the proxy, read back; where
#                             they went; a shard killed and restarted; stop
#
# Environment: CALYPSOD (default: calypsod on PATH, else build/calypsod),
# NUTCRACKER (default nutcracker on PATH, else /usr/sbin/nutcracker).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
calypsod=${CALYPSOD:-$(command -v calypsod || echo "$here/../../build/calypsod")}
nutcracker=${NUTCRACKER:-$(command -v nutcracker || echo /usr/sbin/nutcracker)}

die() { echo "cluster.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (10 s at most) until PORT answers PING; $2 names it in the error.
wait_ping() {
    tries=0
    while [ "$(redis-cli -p "$1" PING 2>/dev/null)" != PONG ]; do
        tries=$((tries + 1))
        [ $tries -le 200 ] || die "$2 on port $1 did not answer PING (see its log in $dir)"
        sleep 0.05
    done
}

start_shard() {    # start_shard I: shard I on the port in DIR/shardI.port
    port=$(cat "$dir/shard$1.port")
    "$calypsod" --bind "127.0.0.1:$port" --dbpath "$dir/shard$1/db" --sync always \
        >>"$dir/shard$1.log" 2>&1 &
    echo $! >"$dir/shard$1.pid"
    wait_ping "$port" "shard$1"
}

start() {
    n=${1:-3}
    [ ! -e "$dir/nutcracker.pid" ] || die "$dir already holds a running cluster (cluster.sh stop $dir)"
    [ -x "$calypsod" ] || die "no calypsod at $calypsod (make, or set CALYPSOD)"
    [ -x "$nutcracker" ] || die "no nutcracker at $nutcracker (apt-get install nutcracker)"
    mkdir -p "$dir"
    servers=""
    i=1
    while [ $i -le "$n" ]; do
        mkdir -p "$dir/shard$i"
        free_port >"$dir/shard$i.port"
        start_shard $i
        servers="$servers   - 127.0.0.1:$(cat "$dir/shard$i.port"):1 shard$i\n"
        i=$((i + 1))
    done
    proxy=$(free_port)
    echo "$proxy" >"$dir/nutcracker.port"
    printf "$servers" >"$dir/servers.txt"
    sed -e "s/@LISTEN@/127.0.0.1:$proxy/" -e "s/@AUTO_EJECT@/false/" \
        -e "/^@SERVERS@\$/{r $dir/servers.txt" -e "d}" "$here/nutcracker.yml.in" >"$dir/nutcracker.yml"
    "$nutcracker" -t -c "$dir/nutcracker.yml" >/dev/null 2>&1 || die "nutcracker refuses $dir/nutcracker.yml"
    "$nutcracker" -c "$dir/nutcracker.yml" -o "$dir/nutcracker.log" -s "$(free_port)" -a 127.0.0.1 &
    echo $! >"$dir/nutcracker.pid"
    wait_ping "$proxy" nutcracker
    echo "proxy on 127.0.0.1:$proxy; shards on$(for f in "$dir"/shard*.port; do printf ' %s' "$(cat "$f")"; done)"
}

stop() {
    for f in "$dir"/nutcracker.pid "$dir"/shard*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        if kill "$pid" 2>/dev/null; then
            tries=0
            while kill -0 "$pid" 2>/dev/null && [ $tries -lt 200 ]; do sleep 0.05; tries=$((tries + 1)); done
        fi
        rm -f "$f"
    done
}

counts() {
    for f in "$dir"/shard*.port; do
        s=$(basename "$f" .port)
        printf '%s (port %s): %s keys\n' "$s" "$(cat "$f")" "$(redis-cli -p "$(cat "$f")" DBSIZE)"
    done
}

demo() {
    rm -rf "$dir"
    start 3
    trap 'stop' EXIT
    p=$(cat "$dir/nutcracker.port")
    echo "writing 10,000 keys user:1..user:10000 through the proxy (100 MSETs of 100 keys)"
    seq 1 10000 | awk '{ line = line " user:" $1 " v" $1 } $1 % 100 == 0 { print "MSET" line; line = "" }' |
        redis-cli -p "$p" >/dev/null
    echo "and 5 keys with the hash tag {cart:42}: MSET {cart:42}:items ... {cart:42}:total"
    redis-cli -p "$p" MSET "{cart:42}:items" 3 "{cart:42}:owner" ann "{cart:42}:ts" 1700000000 \
        "{cart:42}:coupon" none "{cart:42}:total" 99 >/dev/null
    echo "MGET user:1 user:5000 user:10000 {cart:42}:total through the proxy: $(redis-cli -p "$p" MGET user:1 user:5000 user:10000 '{cart:42}:total' | tr '\n' ' ')"
    echo "where the keys went (DBSIZE on each shard):"
    counts
    for f in "$dir"/shard*.port; do
        c=0
        for k in items owner ts coupon total; do c=$((c + $(redis-cli -p "$(cat "$f")" EXISTS "{cart:42}:$k"))); done
        [ $c -eq 0 ] || echo "the 5 {cart:42} keys: all $c on $(basename "$f" .port)"
    done
    victim=2
    vport=$(cat "$dir/shard$victim.port")
    key=""
    for i in $(seq 1 100); do
        if [ "$(redis-cli -p "$vport" EXISTS "user:$i")" = 1 ]; then key=user:$i; break; fi
    done
    other=""
    for i in $(seq 1 100); do
        if [ "$(redis-cli -p "$vport" EXISTS "user:$i")" = 0 ]; then other=user:$i; break; fi
    done
    kill -9 "$(cat "$dir/shard$victim.pid")"
    sleep 0.2
    echo "shard$victim killed (SIGKILL): GET $key -> $(redis-cli -p "$p" GET "$key" 2>&1); GET $other (another shard) -> $(redis-cli -p "$p" GET "$other")"
    start_shard $victim
    echo "shard$victim restarted on its database: GET $key -> $(redis-cli -p "$p" GET "$key")"
}

[ $# -ge 2 ] || die "usage: cluster.sh start|stop|counts|demo DIR [N]"
cmd=$1
dir=$2
shift 2
case $cmd in
    start) start "$@" ;;
    stop) stop ;;
    counts) counts ;;
    demo) demo ;;
    *) die "unknown command $cmd (start, stop, counts, demo)" ;;
esac
