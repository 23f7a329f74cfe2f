#!/usr/bin/python3
"""bench_server.py: calypsod against redis-server with redis-benchmark
(`make bench-server`; a benchmark, not a test).

Both servers run on loopback ports picked here, their data on the same
disk (BENCH_SERVER_DIR, default build/bench-server): redis-server
(Debian's) with `appendonly yes`, and calypsod, first with Redis's
`appendfsync everysec` against `--sync everysec`, then `appendfsync
always` against `--sync always`. Each figure is
`redis-benchmark -c 50 -n N -r 1000000 -d 100 -t set|get -P 1|16`, the
two servers alternating (which goes first alternates too). RSS is read
from /proc after the SET runs, with the number of keys (DBSIZE), and
after loading 1,000,000 keys of 100-byte values with redis-cli --pipe
(BENCH_SERVER_ONLY=rss measures only that).
Prints a Markdown table (also written to BENCH_SERVER_DIR/results.md).

Environment: BENCH_SERVER_N (default 1000000), CALYPSOD (the binary).
"""
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import BIN, free_port  # noqa: E402

N = int(os.environ.get("BENCH_SERVER_N", "1000000"))
DIR = os.path.abspath(os.environ.get("BENCH_SERVER_DIR", "build/bench-server"))


def wait_port(port, proc):
    for _ in range(500):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start")


def start(kind, mode):
    port = free_port()
    d = os.path.join(DIR, "%s-%s" % (kind, mode))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    log = open(os.path.join(d, "log"), "wb")
    if kind == "redis":
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
                "--appendonly", "yes", "--appendfsync", mode, "--daemonize", "no"]
    else:
        args = [BIN, "--bind", "127.0.0.1:%d" % port, "--dbpath", os.path.join(d, "db"), "--sync", mode]
    p = subprocess.Popen(args, stdout=log, stderr=log)
    wait_port(port, p)
    return p, port


def stop(p):
    p.terminate()
    p.wait(60)


class Rss(float):
    """VmRSS in MB, printed with its anonymous part (RssAnon): calypso's
    RSS also counts the pages of datafiles it maps, which the kernel can
    drop at will."""
    anon = 0.0

    def __format__(self, spec):
        return "%.0f MB (%.0f MB anon)" % (float(self), self.anon)


def rss_mb(pid):
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                vals[k] = int(v.split()[0]) / 1024.0
    r = Rss(vals.get("VmRSS", 0.0))
    r.anon = vals.get("RssAnon", 0.0)
    return r


def bench(port, test, pipeline, n):
    p = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(n), "-r", "1000000",
                        "-d", "100", "-t", test, "-P", str(pipeline), "--csv"],
                       capture_output=True, text=True, timeout=3600)
    for line in p.stdout.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f and f[0] == test.upper():
            return float(f[1])
    raise RuntimeError("no result: " + p.stdout + p.stderr)


def dbsize(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "DBSIZE"], capture_output=True, text=True).stdout
    return int(out.strip() or 0)


def round_(mode, tests, n):
    servers = {k: start(k, mode) for k in ("redis", "calypsod")}
    rows = []
    rss = {}
    flip = False
    try:
        for test in tests:
            for pipeline in (1, 16):
                order = ["redis", "calypsod"] if not flip else ["calypsod", "redis"]
                flip = not flip
                res = {}
                for k in order:
                    res[k] = bench(servers[k][1], test, pipeline, n)
                    print("  %-8s %-3s -P %-2d %-8s %10.0f req/s" % (mode, test.upper(), pipeline, k, res[k]),
                          flush=True)
                rows.append((mode, test.upper(), pipeline, res["redis"], res["calypsod"]))
            if test == "set":
                for k in servers:
                    rss[k] = (rss_mb(servers[k][0].pid), dbsize(servers[k][1]))
    finally:
        for p, _ in servers.values():
            stop(p)
    return rows, rss


def rss_1m():
    """RSS of each server holding 1,000,000 keys of 100-byte values,
    loaded with redis-cli --pipe."""
    out = {}
    for kind in ("redis", "calypsod"):
        p, port = start(kind, "everysec")
        try:
            feed = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL)
            val = b"v" * 100
            for base in range(0, 1000000, 10000):
                feed.stdin.write(b"".join(b"*3\r\n$3\r\nSET\r\n$11\r\nkey:%07d\r\n$100\r\n%s\r\n" % (i, val)
                                          for i in range(base, base + 10000)))
            feed.stdin.close()
            feed.wait(600)
            out[kind] = (rss_mb(p.pid), dbsize(port))
        finally:
            stop(p)
    return out


def main():
    os.makedirs(DIR, exist_ok=True)
    print("redis-benchmark -c 50 -n %d -r 1000000 -d 100, on %s" % (N, os.uname().nodename), flush=True)
    if os.environ.get("BENCH_SERVER_ONLY") == "rss":
        r = rss_1m()
        print("| 1,000,000 keys, 100-byte values | {} | {} |".format(r["redis"][0], r["calypsod"][0]))
        return
    rows, rss = round_("everysec", ["set", "get"], N)
    rows2, rss2 = round_("always", ["set", "get"], N)
    r1m = rss_1m()
    out = ["| sync | test | -P | redis-server req/s | calypsod req/s | calypsod / redis |",
           "|---|---|---|---:|---:|---:|"]
    for mode, test, p, r, c in rows + rows2:
        out.append("| %s | %s | %d | %.0f | %.0f | %.2fx |" % (mode, test, p, r, c, c / r))
    out.append("")
    out.append("| RSS | redis-server | calypsod |")
    out.append("|---|---:|---:|")
    for mode, r in (("everysec", rss), ("always", rss2)):
        out.append("| after the SET runs ({}, {} keys) | {} | {} |".format(
            mode, r["calypsod"][1], r["redis"][0], r["calypsod"][0]))
    out.append("| 1,000,000 keys of 100-byte values ({} / {} keys) | {} | {} |".format(
        r1m["redis"][1], r1m["calypsod"][1], r1m["redis"][0], r1m["calypsod"][0]))
    text = "\n".join(out)
    print(text)
    with open(os.path.join(DIR, "results.md"), "w") as f:
        f.write("redis-benchmark -c 50 -n %d -r 1000000 -d 100\n\n%s\n" % (N, text))


main()
