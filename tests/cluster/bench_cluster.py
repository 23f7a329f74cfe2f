#!/usr/bin/python3
"""bench_cluster.py: what twemproxy costs in front of calypsod, and what
shards buy (`make bench-cluster`; a benchmark, not a test).

Three set-ups run side by side in one run, each on loopback ports picked
here, databases under BENCH_CLUSTER_DIR (default build/bench-cluster),
shards at calypsod's default `--sync everysec`:
  direct   one calypsod, redis-benchmark straight at it;
  proxy-1  nutcracker (examples/cluster/nutcracker.yml.in) with one shard;
  proxy-3  nutcracker with three shards.
Each figure is `redis-benchmark -c 50 -n N -r 100000 -d 100 -t set|get
-P 1|16`; for each test the three set-ups run one after the other. The CPU
time the proxy and the shards used during each run (utime + stime from
/proc) is divided by the requests: microseconds of CPU per request.

Then the cost of adding a shard: proxy-3's shards (holding the keys of the
SET runs) get 1.2 x FILL more SETs of random keys out of 4 x FILL through
the proxy (FILL default 300,000: about 310,000 new keys; 16-byte names,
100-byte values), a fourth shard is added, and examples/cluster/rebalance.py
is timed, one process per old shard (--only) side by side. Last, the
shards are stopped and `calypso stats` reads each database, before and
after `calypso merge`: keys, bytes on disk and key-directory bytes, per key.

Prints Markdown tables (also written to BENCH_CLUSTER_DIR/results.md).
Environment: BENCH_CLUSTER_N (default 200000), BENCH_CLUSTER_FILL
(default 300000), CALYPSOD.
"""
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster_util  # noqa: E402
from cluster_util import Proxy, Server, ROOT  # noqa: E402

N = int(os.environ.get("BENCH_CLUSTER_N", "200000"))
FILL = int(os.environ.get("BENCH_CLUSTER_FILL", "300000"))
DIR = os.path.abspath(os.environ.get("BENCH_CLUSTER_DIR", os.path.join(ROOT, "build", "bench-cluster")))
CALYPSO = os.path.join(os.path.dirname(cluster_util.cdtest.BIN), "calypso")
TICK = os.sysconf("SC_CLK_TCK")
out_lines = []


def say(line=""):
    print(line, flush=True)
    out_lines.append(line)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stats(dbpath):
    """`calypso stats DB` as a dict of integers."""
    out = subprocess.run([CALYPSO, "stats", dbpath], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def shard(name):
    d = os.path.join(DIR, name)
    os.makedirs(d)
    return Server(dbpath=d)


def bench(port, test, pipe, n=N, keyspace=100000, extra=()):
    """requests/s of one redis-benchmark run."""
    argv = ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(n), "-r", str(keyspace), "-d", "100",
            "-t", test, "-P", str(pipe), "--csv"] + list(extra)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    m = re.search(r'^"%s","([0-9.]+)"' % test.upper(), p.stdout, re.M)
    if not m:
        raise RuntimeError("redis-benchmark: no figure in %r %r" % (p.stdout[-300:], p.stderr[-300:]))
    return float(m.group(1))


def main():
    shutil.rmtree(DIR, ignore_errors=True)
    os.makedirs(DIR)
    cluster_util.BASE = DIR
    direct = shard("direct")
    one = [shard("p1-shard1")]
    three = [shard("p3-shard%d" % (i + 1)) for i in range(3)]
    p1 = Proxy([(one[0].port, "shard1")])
    p3 = Proxy([(s.port, "shard%d" % (i + 1)) for i, s in enumerate(three)])
    setups = [("direct", direct.port, None, [direct]), ("proxy-1", p1.port, p1, one), ("proxy-3", p3.port, p3, three)]
    load = os.getloadavg()[0]
    say("calypsod behind twemproxy: %s, %d cores, load %.2f at start, N = %d per figure, -c 50, -d 100, "
        "-r 100000, shards --sync everysec" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                               os.cpu_count(), load, N))
    say()
    say("| set-up | test | -P | requests/s | proxy CPU µs/request | shards' CPU µs/request |")
    say("|---|---|---:|---:|---:|---:|")
    results = {}
    try:
        for test in ("set", "get"):
            for pipe in (1, 16):
                for name, port, proxy, shards in setups:
                    pids = [s.proc.pid for s in shards]
                    c0 = [cpu_seconds(p) for p in pids]
                    x0 = cpu_seconds(proxy.proc.pid) if proxy else 0
                    rps = bench(port, test, pipe)
                    sh = sum(cpu_seconds(p) for p in pids) - sum(c0)
                    px = (cpu_seconds(proxy.proc.pid) - x0) if proxy else 0
                    results[(name, test, pipe)] = (rps, px * 1e6 / N, sh * 1e6 / N)
                    say("| %s | %s | %d | %.0f | %s | %.1f |" % (name, test.upper(), pipe, rps,
                        "%.1f" % (px * 1e6 / N) if proxy else "-", sh * 1e6 / N))
        say()
        say("| test | -P | proxy-1 / direct | proxy-3 / direct | proxy-3 / proxy-1 |")
        say("|---|---:|---:|---:|---:|")
        for test in ("set", "get"):
            for pipe in (1, 16):
                d, a, b = (results[(s, test, pipe)][0] for s in ("direct", "proxy-1", "proxy-3"))
                say("| %s | %d | %.2fx | %.2fx | %.2fx |" % (test.upper(), pipe, a / d, b / d, b / a))
        say()
        say("Separate machines, from these figures: a shard serves what `direct` does; a proxy core "
            "serves 1e6 / (proxy CPU µs per request) requests/s:")
        for test in ("set", "get"):
            for pipe in (1, 16):
                d = results[("direct", test, pipe)][0]
                px = results[("proxy-3", test, pipe)][1]
                say("- %s -P %d: one shard %.0f/s; 3 shards %.0f/s; 10 shards %.0f/s; one proxy core at "
                    "%.1f µs/request: %.0f/s" % (test.upper(), pipe, d, 3 * d, 10 * d, px, 1e6 / px if px else 0))
    finally:
        p1.stop()
        p3.stop()
        for s in [direct] + one:
            s.stop()

    # Adding a fourth shard to three: fill, add, rebalance.
    # redis-benchmark's keys: "key:" and 12 digits (16 bytes); 100-byte values.
    say()
    proxy = Proxy([(s.port, "shard%d" % (i + 1)) for i, s in enumerate(three)])
    fill_rps = bench(proxy.port, "set", 16, n=int(FILL * 1.2), keyspace=FILL * 4)
    keys = sum(int(subprocess.run(["redis-cli", "-p", str(s.port), "DBSIZE"], capture_output=True,
                                  text=True).stdout) for s in three)
    proxy.stop()
    four = three + [shard("p3-shard4")]
    proxy = Proxy([(s.port, "shard%d" % (i + 1)) for i, s in enumerate(four)])
    t0 = time.time()
    script = os.path.join(ROOT, "examples", "cluster", "rebalance.py")
    procs = [subprocess.Popen(["/usr/bin/python3", script, proxy.conf, "--only", "shard%d" % (i + 1)],
                              stdout=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    secs = time.time() - t0
    found = [re.search(r"^(\d+) keys scanned, (\d+) moved", o, re.M) for o in outs]
    moved = sum(int(m.group(2)) for m in found) if all(found) else -1
    say("Adding a 4th shard to 3: %d keys (filled through the proxy at %.0f SET/s, -P 16); three rebalance.py "
        "--only, one per old shard, side by side, moved %d (%.1f%%) in %.1f s: %.0f keys examined/s, "
        "%.0f keys moved/s." % (keys, fill_rps, moved, 100.0 * moved / keys, secs, keys / secs, moved / secs))
    proxy.stop()
    for s in four:
        s.stop()

    # Per key, from the engine's own statistics (the shards closed cleanly):
    # as written (overwritten records and the moved keys' tombstones still
    # on disk), then after `calypso merge`.
    say()
    say("| shard | keys | disk as written | after merge | disk B/key (merged) | keydir bytes | keydir B/key |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    tot = [0, 0, 0, 0]
    for i, s in enumerate(four):
        before = stats(s.dbpath)
        subprocess.run([CALYPSO, "merge", s.dbpath, "--quiet"], capture_output=True, check=True)
        f = stats(s.dbpath)
        row = [f["keys"], before["size"], f["size"], f["keydir_bytes"]]
        tot = [x + y for x, y in zip(tot, row)]
        say("| shard%d | %d | %d | %d | %.1f | %d | %.1f |" % (i + 1, row[0], row[1], row[2], row[2] / row[0],
                                                              row[3], row[3] / row[0]))
    say("| all | %d | %d | %d | %.1f | %d | %.1f |" % (tot[0], tot[1], tot[2], tot[2] / tot[0], tot[3],
                                                       tot[3] / tot[0]))
    with open(os.path.join(DIR, "results.md"), "w") as f:
        f.write("\n".join(out_lines) + "\n")


if __name__ == "__main__":
    main()
