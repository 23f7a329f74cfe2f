#!/usr/bin/python3
"""test_rebalance.py: a fourth shard added to three behind twemproxy, and
taken out again, with examples/cluster/rebalance.py moving the keys.

- examples/cluster/ketama.py places every key where the proxy does (asked
  of each shard directly), so the script knows which keys to move;
- adding the fourth shard changes the owner of about a quarter of the keys,
  all of them to the new shard (consistent hashing);
- through the new proxy, before the move, those keys read as missing
  (what the README warns about); after rebalance.py every key reads back
  with its value and TTL, on its owner alone; a second run moves nothing;
- taking the shard out again (rebalance.py --from it) moves its keys back;
- added again, three rebalance.py --only NAME side by side, one per old
  shard, move the same keys.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster, ROOT  # noqa: E402
from cdtest import check, eq, finish, cleanup  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "examples", "cluster"))
import ketama  # noqa: E402

SCRIPT = os.path.join(ROOT, "examples", "cluster", "rebalance.py")


def placement(cl, keys):
    """key -> list of the shards (indexes) that hold it, asked directly."""
    where = {k: [] for k in keys}
    for i in range(len(cl.shards)):
        p = cl.direct(i).pipeline(transaction=False)
        for k in keys:
            p.exists(k)
        for k, e in zip(keys, p.execute()):
            if e:
                where[k].append(i)
    return where


def rebalance(cl, *extra):
    out = subprocess.run(["/usr/bin/python3", SCRIPT, cl.proxy.conf] + list(extra),
                         capture_output=True, text=True, timeout=120)
    print("  " + out.stdout.strip().replace("\n", "\n  "), flush=True)
    check(out.returncode == 0, "rebalance.py exits 0", out.stderr[-500:])
    m = re.search(r"^(\d+) keys scanned, (\d+) moved", out.stdout, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def check_all(cl, data, ttl_keys, what):
    r = cl.client()
    keys = list(data)
    got = []
    for i in range(0, len(keys), 1000):
        got += r.mget(keys[i:i + 1000])
    eq([k for k, v in zip(keys, got) if v != data[k]][:5], [], what + ": every key reads back through the proxy")
    ring = ketama.Ring(cl.names, "murmur", "{}")
    where = placement(cl, keys)
    eq([k for k in keys if where[k] != [ring.owner(k.encode())]][:5], [], what + ": every key on its owner alone")
    ttls = [r.ttl(k) for k in ttl_keys]
    check(all(0 < t <= 300 for t in ttls), what + ": TTLs kept", ttls[:5])
    eq(r.ttl(keys[1]), -1, what + ": a key without TTL still has none")


def main():
    cl = Cluster(3, shard_args=())
    try:
        r = cl.client()
        data = {("item:%d" % i): ("value-%d" % i).encode() for i in range(6000)}
        data.update({("{order:%d}:line:%d" % (i, j)): b"L" for i in range(100) for j in range(5)})
        items = list(data.items())
        for i in range(0, len(items), 500):
            r.mset(dict(items[i:i + 500]))
        ttl_keys = ["item:%d" % i for i in range(0, 6000, 97)]
        for k in ttl_keys:
            r.expire(k, 300)
        keys = list(data)

        ring3 = ketama.Ring(cl.names, "murmur", "{}")
        where = placement(cl, keys)
        eq([k for k in keys if where[k] != [ring3.owner(k.encode())]][:5], [],
           "ketama.py places all 6500 keys where the proxy put them")

        new = cl.add_shard()
        ring4 = ketama.Ring(cl.names, "murmur", "{}")
        moving = [k for k in keys if ring4.owner(k.encode()) != ring3.owner(k.encode())]
        eq(sorted(set(ring4.owner(k.encode()) for k in moving)), [new], "every key that changes owner goes to the new shard")
        share = len(moving) / len(keys)
        print("  a fourth shard takes %d of %d keys (%.1f%%)" % (len(moving), len(keys), 100 * share), flush=True)
        check(0.15 <= share <= 0.35, "about a quarter of the keys change owner", share)

        cl.restart_proxy()
        eq(r.connection_pool.connection_kwargs["port"] == cl.proxy.port, False, "(the old client points at the old proxy)")
        r = cl.client()
        eq(r.get(moving[0]), None, "before the move, a moved key reads as missing through the new proxy")

        scanned, moved = rebalance(cl)
        # the new shard is scanned last, so the keys moved into it are seen twice
        eq((scanned, moved), (len(keys) + len(moving), len(moving)),
           "rebalance.py scans every key and moves the ones whose owner changed")
        check_all(cl, data, ttl_keys, "after adding a shard")
        eq(rebalance(cl), (len(keys), 0), "a second run moves nothing")

        # take the fourth shard out again: the proxy on three, its keys moved back
        leaving = cl.shards.pop()
        cl.names.pop()
        cl.restart_proxy()
        scanned, moved = rebalance(cl, "--from", "127.0.0.1:%d" % leaving.port)
        eq(moved, len(moving), "taking the shard out moves its keys back")
        eq(cl.direct(0).connection_pool.connection_kwargs["port"] != leaving.port, True, "(the shard left the list)")
        check_all(cl, data, ttl_keys, "after taking it out")
        leaving.stop()

        # add it again (a fresh, empty shard4), one rebalance.py per old
        # shard (--only), side by side
        cl.add_shard()
        cl.restart_proxy()
        procs = [subprocess.Popen(["/usr/bin/python3", SCRIPT, cl.proxy.conf, "--only", name],
                                  stdout=subprocess.PIPE, text=True) for name in cl.names[:3]]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        moved = [re.search(r"^(\d+) keys scanned, (\d+) moved", o, re.M) for o in outs]
        eq([p.returncode for p in procs], [0, 0, 0], "three rebalance.py --only run side by side")
        eq(sum(int(m.group(2)) for m in moved if m), len(moving), "between them they move the same keys")
        eq(sum(int(m.group(1)) for m in moved if m), len(keys), "each scans only its own shard: every key once")
        check_all(cl, data, ttl_keys, "after the side-by-side runs")
        bad = subprocess.run(["/usr/bin/python3", SCRIPT, cl.proxy.conf, "--only", "shard9"],
                             capture_output=True, text=True)
        check(bad.returncode != 0 and "no shard named shard9" in bad.stderr, "--only of an unknown name is refused",
              bad.stderr)
    finally:
        cl.stop()
    cleanup()
    finish()


if __name__ == "__main__":
    main()
