#!/usr/bin/python3
"""test_cluster.py: three calypsod shards behind twemproxy (nutcracker),
configured by examples/cluster/nutcracker.yml.in.

- SET, GET, MGET, MSET, DEL, EXISTS, EXPIRE, TTL and INCR through the proxy
  with redis-cli (one-shot), redis-py and hiredis (hiredis_cluster.c,
  $HIREDIS_CLUSTER);
- the keys spread over all three shards, each key on exactly one shard
  (asked of each shard directly), and keys with one hash tag {...} on one
  shard;
- the proxy's redis_auth against calypsod's --requirepass;
- many clients pipelining through the proxy's one connection per shard:
  redis-benchmark -c 50 -P 16 (then the counters it incremented add up
  exactly) and 50 threads of redis-py pipelines of distinct values;
- a multi-key EXISTS through twemproxy counts only the first key's shard;
- the npm clients (node_clients.js): node-redis and ioredis with the
  options that keep them off HELLO, CLIENT and INFO work, their defaults
  do not;
- a command twemproxy does not support (KEYS) closes the client's
  connection, and so does QUIT, without a reply: what the README tells
  users.
"""
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster, ROOT  # noqa: E402
import cdtest  # noqa: E402
from cdtest import check, eq, finish, cleanup  # noqa: E402
import redis  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HIREDIS = os.environ.get("HIREDIS_CLUSTER", os.path.join(ROOT, "build", "hiredis_cluster"))


def cli(port, *args, password=None):
    argv = ["redis-cli", "-p", str(port)] + (["--no-auth-warning", "-a", password] if password else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()


def test_redis_cli(cl):
    p = cl.proxy.port
    eq(cli(p, "SET", "cli:a", "hello"), "OK", "redis-cli SET")
    eq(cli(p, "GET", "cli:a"), "hello", "redis-cli GET")
    eq(cli(p, "MSET", "cli:b", "2", "cli:c", "3", "cli:d", "4", "cli:e", "5"), "OK", "redis-cli MSET")
    eq(cli(p, "MGET", "cli:a", "cli:b", "cli:x", "cli:e"), "hello\n2\n\n5", "redis-cli MGET")
    eq([cli(p, "EXISTS", k) for k in ("cli:a", "cli:b", "cli:x")], ["1", "1", "0"], "redis-cli EXISTS")
    eq(cli(p, "EXPIRE", "cli:a", "100"), "1", "redis-cli EXPIRE")
    check(cli(p, "TTL", "cli:a") in ("99", "100"), "redis-cli TTL", cli(p, "TTL", "cli:a"))
    eq(cli(p, "INCR", "cli:b"), "3", "redis-cli INCR")
    eq(cli(p, "DEL", "cli:a", "cli:b", "cli:x"), "2", "redis-cli DEL")
    eq(cli(p, "GET", "cli:a"), "", "redis-cli GET after DEL")
    eq(len(cl.owners("cli:c")), 1, "redis-cli's key is on one shard")


def test_redis_py(cl):
    r = cl.client()
    eq(r.set("py:a", "1"), True, "redis-py SET")
    eq(r.get("py:a"), b"1", "redis-py GET")
    keys = ["py:k%d" % i for i in range(200)]
    eq(r.mset({k: "v" + k for k in keys}), True, "redis-py MSET of 200 keys")
    eq(r.mget(keys + ["py:none"]), [("v" + k).encode() for k in keys] + [None], "redis-py MGET of 200 keys in order")
    eq(sorted(set(o for k in keys for o in cl.owners(k))), [0, 1, 2], "MSET's keys went to all three shards")
    eq([r.exists(k) for k in keys[:50] + ["py:none"]], [1] * 50 + [0], "redis-py EXISTS, one key each")
    eq(r.expire("py:a", 60), True, "redis-py EXPIRE")
    check(r.ttl("py:a") in (59, 60), "redis-py TTL", r.ttl("py:a"))
    eq(r.ttl("py:k0"), -1, "TTL of a key without expiry")
    eq(r.incr("py:n"), 1, "redis-py INCR")
    eq(r.incr("py:n", 41), 42, "redis-py INCRBY")
    eq(r.delete(*keys[:100], "py:none"), 100, "redis-py DEL over shards")
    eq(sum(r.exists(k) for k in keys), 100, "the other half remains")
    # The default pipeline of redis-py is MULTI/EXEC, which the proxy does
    # not pass; transaction=False pipelines plain commands.
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.set("py:pipe:%d" % i, i)
        p.incr("py:pipe:%d" % i)
    eq(p.execute(), [x for i in range(100) for x in (True, i + 1)], "redis-py pipeline without a transaction")


def run_hiredis(port, *password):
    """hiredis_cluster's own checks; returns (passed, failed) from its
    closing line, and prints the lines of its failures."""
    out = subprocess.run([HIREDIS, str(port)] + list(password), capture_output=True, text=True, timeout=60).stdout
    for line in out.splitlines():
        if line.startswith("FAIL"):
            print("  hiredis " + line)
    m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else (0, -1)


def test_hiredis(cl):
    eq(run_hiredis(cl.proxy.port), (19, 0), "hiredis_cluster: 19 checks pass")


def test_spread(cl):
    """3000 keys: each on exactly one shard, every shard between 20% and
    47% of them (ketama over three names; the split is fixed by the key
    names, so this is deterministic)."""
    r = cl.client()
    keys = ["user:%d" % i for i in range(3000)]
    for i in range(0, len(keys), 500):
        r.mset({k: k for k in keys[i:i + 500]})
    counts = [0, 0, 0]
    misplaced = 0
    for i in range(3):
        d = cl.direct(i)
        p = d.pipeline(transaction=False)
        for k in keys:
            p.exists(k)
        hits = p.execute()
        counts[i] = sum(hits)
    for k in keys[:300]:
        if len(cl.owners(k)) != 1:
            misplaced += 1
    print("  3000 keys per shard: %s" % counts)
    eq(sum(counts), 3000, "every key on exactly one shard (sum of the shards' counts)")
    eq(misplaced, 0, "no key on two shards or on none")
    check(all(600 <= c <= 1410 for c in counts), "every shard holds 20%-47% of the keys", counts)


def test_hash_tags(cl):
    r = cl.client()
    shards_of_tags = set()
    together = True
    for t in range(30):
        keys = ["{cart:%d}:%s" % (t, f) for f in ("items", "total", "owner", "ts", "x")]
        r.mset({k: "t%d" % t for k in keys})
        owners = set(o for k in keys for o in cl.owners(k))
        together &= len(owners) == 1
        shards_of_tags |= owners
    check(together, "the keys of one hash tag are on one shard")
    eq(sorted(shards_of_tags), [0, 1, 2], "30 tags use all three shards")
    r.set("cart:3", "plain")
    eq(cl.owners("{cart:3}:items"), cl.owners("cart:3"), "{cart:3}:items is where the plain key cart:3 is")


def test_auth():
    """redis_auth: the proxy authenticates its connections to the shards
    (which run with --requirepass) and asks its clients for the same
    password."""
    cl = Cluster(3, auth="s3cret pw")
    try:
        p = cl.proxy.port
        eq(cli(p, "SET", "a", "1", password="s3cret pw"), "OK", "redis-cli -a through the proxy")
        eq(cli(p, "GET", "a", password="s3cret pw"), "1", "GET with the password")
        check(cli(p, "GET", "a").startswith("NOAUTH"), "without AUTH the proxy refuses", cli(p, "GET", "a"))
        c = cdtest.Conn(p)
        c.send(cdtest.cmd("AUTH", "wrong") + cdtest.cmd("GET", "a"))
        eq(c.read_quiet(), b"-ERR invalid password\r\n-NOAUTH Authentication required\r\n",
           "a wrong password is refused, and so is the next command")
        c.close()
        owner = cl.owners("a")[0]
        check(cli(cl.shards[owner].port, "GET", "a").startswith("NOAUTH"), "the shard itself wants the password")
        r = cl.client()
        eq(r.mset({"k%d" % i: i for i in range(100)}), True, "redis-py with the password: MSET over shards")
        eq(r.mget(["k%d" % i for i in range(100)]), [str(i).encode() for i in range(100)], "MGET with the password")
        eq(run_hiredis(p, "s3cret pw"), (20, 0), "hiredis_cluster with AUTH: 20 checks pass")
    finally:
        cl.stop()


def test_benchmark_pipelines(cl):
    """redis-benchmark with 50 clients, 16 requests in flight each: the proxy
    multiplexes them over one connection per shard. Each INCR must count
    exactly once and each reply reach its own client."""
    r = cl.client()
    out = subprocess.run(["redis-benchmark", "-p", str(cl.proxy.port), "-c", "50", "-P", "16", "-n", "40000",
                          "-r", "1000", "-t", "incr", "-q"], capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, "redis-benchmark incr through the proxy", out.stderr[-500:])
    keys = ["counter:%012d" % i for i in range(1000)]
    total = sum(int(v) for v in r.mget(keys) if v is not None)
    eq(total, 40000, "40,000 pipelined INCRs from 50 clients: the counters add up to 40,000")
    seen = [cl.direct(i).mget(keys) for i in range(3)]
    dup = sum(1 for j in range(1000) if sum(1 for s in seen if s[j] is not None) > 1)
    eq(dup, 0, "each counter lives on one shard")
    check(all(any(v is not None for v in s) for s in seen), "the counters use all three shards")
    out = subprocess.run(["redis-benchmark", "-p", str(cl.proxy.port), "-c", "50", "-P", "16", "-n", "40000",
                          "-t", "incr", "-q"], capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, "redis-benchmark incr of one key through the proxy", out.stderr[-500:])
    eq(r.get("counter:__rand_int__"), b"40000", "one counter incremented 40,000 times by 50 pipelining clients")


def test_threads_pipelining(cl):
    """50 threads, each its own connection to the proxy, each sending
    pipelines of 16 SETs of values of its own then 16 GETs: every GET must
    return its own thread's value."""
    bad = []

    def worker(t):
        try:
            r = cl.client()
            for rnd in range(20):
                p = r.pipeline(transaction=False)
                keys = ["th:%d:%d" % (t, (rnd * 16 + i) % 97) for i in range(16)]
                for i, k in enumerate(keys):
                    p.set(k, "%d/%d/%d" % (t, rnd, i))
                for k in keys:
                    p.get(k)
                got = p.execute()   # the 16 keys of a round are distinct (16 < 97)
                want = [True] * 16 + [("%d/%d/%d" % (t, rnd, i)).encode() for i in range(16)]
                if got != want:
                    bad.append((t, rnd, got[:4], want[:4]))
                    return
        except Exception as e:  # noqa: BLE001
            bad.append((t, repr(e)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    eq(bad[:3], [], "50 threads x 20 pipelines of 32 commands: every reply its own")


def test_exists_first_shard(cl):
    """twemproxy 0.5.0 does not split a multi-key EXISTS: it sends every key
    to the first key's shard, so the count leaves out the keys on other
    shards. The README says to ask EXISTS one key at a time."""
    r = cl.client()
    keys = ["ex:%d" % i for i in range(30)]
    r.mset({k: 1 for k in keys})
    first = cl.owners(keys[0])[0]
    on_first = sum(1 for k in keys if cl.owners(k) == [first])
    check(on_first < 30, "the keys are on more than one shard")
    eq(r.exists(*keys), on_first, "EXISTS of 30 keys through the proxy counts the first key's shard only")


def test_node(cl):
    out = subprocess.run(["node", os.path.join(HERE, "node_clients.js"), str(cl.proxy.port)],
                         capture_output=True, text=True, timeout=120).stdout
    for line in out.splitlines():
        if line.startswith("FAIL"):
            print("  node " + line)
    m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    eq((int(m.group(1)), int(m.group(2))) if m else out[-300:], (17, 0), "node_clients.js: 17 checks pass")


def test_unsupported(cl):
    c = cdtest.Conn(cl.proxy.port)
    c.send(cdtest.cmd("QUIT"))
    eq(c.read_quiet(), b"", "QUIT: the proxy closes the connection without +OK")
    check(c.closed, "QUIT closes")
    c.close()
    r = cl.client()
    try:
        r.keys("*")
        check(False, "KEYS through twemproxy: the connection closes")
    except redis.ConnectionError:
        check(True, "KEYS through twemproxy: the connection closes")
    eq(cl.client().get("py:k150"), b"vpy:k150", "a new connection works after it")


def main():
    cl = Cluster(3)
    try:
        for t in (test_redis_cli, test_redis_py, test_hiredis, test_spread, test_hash_tags,
                  test_benchmark_pipelines, test_threads_pipelining, test_exists_first_shard,
                  test_node, test_unsupported):
            print("- " + t.__name__, flush=True)
            t(cl)
    finally:
        cl.stop()
    print("- test_auth", flush=True)
    test_auth()
    cleanup()
    finish()


if __name__ == "__main__":
    main()
