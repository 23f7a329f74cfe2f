#!/usr/bin/python3
"""rebalance.py: after a shard is added to (or taken out of) a twemproxy
pool of calypsod shards, moves every key whose ketama owner changed to its
new owner. Needs Debian's python3-redis.

    rebalance.py NEW_CONFIG [--only NAME ...] [--from HOST:PORT ...] [--auth PW] [--batch N]

NEW_CONFIG is the proxy's configuration with the new list of shards (the
one the proxy now runs with). Every shard it lists, and every --from shard
(a shard being taken out), is scanned directly (SCAN, COUNT N); for each
key, ketama.py computes the owner under the new list; a key held by a
shard that no longer owns it is copied to its owner with its remaining TTL
(GET and PTTL, then SET ... PX ... NX on the owner) and deleted from the
old shard. NX: a write that reached the new owner through the proxy since
the change is newer and is kept. Keys stay readable through the old
configuration until they move; through the new one, a key not moved yet
reads as missing, so run this between stopping writes and pointing the
clients at the new proxy (or accept misses for a while).

--only NAME scans only the shards so named (and the --from ones): one
process per shard, run side by side, share the work (a shard just added
holds only keys it owns and need not be scanned).

Prints the keys scanned and moved, per source shard, and the time taken.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ketama  # noqa: E402
import redis  # noqa: E402


def move_batch(src, dst_of, keys, ring, here):
    """Moves the keys of one SCAN batch that src holds and no longer owns;
    returns how many were moved."""
    moving = [k for k in keys if ring.owner(k) != here]
    if not moving:
        return 0
    p = src.pipeline(transaction=False)
    for k in moving:
        p.get(k)
        p.pttl(k)
    got = p.execute()
    by_owner = {}
    for i, k in enumerate(moving):
        value, ttl = got[2 * i], got[2 * i + 1]
        if value is None or ttl == -2 or ttl == 0:
            continue                       # expired or deleted meanwhile
        by_owner.setdefault(ring.owner(k), []).append((k, value, ttl))
    moved = 0
    for owner, items in by_owner.items():
        p = dst_of(owner).pipeline(transaction=False)
        for k, value, ttl in items:
            p.set(k, value, px=ttl if ttl > 0 else None, nx=True)
        p.execute()                        # raises on an error: nothing deleted
        d = src.pipeline(transaction=False)
        for k, _, _ in items:
            d.delete(k)
        d.execute()
        moved += len(items)
    return moved


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--from", dest="extra", action="append", default=[], metavar="HOST:PORT")
    ap.add_argument("--only", action="append", default=[], metavar="NAME")
    ap.add_argument("--auth")
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    try:
        servers, hash_name, tag = ketama.read_config(a.config)
        ring = ketama.Ring([name for _, _, name in servers], hash_name, tag)
    except (OSError, ValueError) as e:
        sys.exit("rebalance: %s" % e)
    conns = [redis.Redis(host=h, port=p, password=a.auth, socket_timeout=30) for h, p, _ in servers]
    unknown = set(a.only) - set(name for _, _, name in servers)
    if unknown:
        sys.exit("rebalance: no shard named %s in %s" % (", ".join(sorted(unknown)), a.config))
    sources = [(i, c) for i, c in enumerate(conns) if not a.only or servers[i][2] in a.only]
    for hp in a.extra:
        h, _, p = hp.rpartition(":")
        sources.append((-1, redis.Redis(host=h, port=int(p), password=a.auth, socket_timeout=30)))
    start = time.time()
    total_scanned = total_moved = 0
    for here, src in sources:
        scanned = moved = 0
        batch = []
        for k in src.scan_iter(count=a.batch):
            batch.append(k)
            if len(batch) >= a.batch:
                moved += move_batch(src, conns.__getitem__, batch, ring, here)
                scanned += len(batch)
                batch = []
        moved += move_batch(src, conns.__getitem__, batch, ring, here)
        scanned += len(batch)
        name = servers[here][2] if here >= 0 else "leaving %s" % src.connection_pool.connection_kwargs["port"]
        print("%s: %d keys scanned, %d moved" % (name, scanned, moved), flush=True)
        total_scanned += scanned
        total_moved += moved
    secs = time.time() - start
    print("%d keys scanned, %d moved (%.1f%%) in %.2f s (%.0f keys scanned/s)" %
          (total_scanned, total_moved, 100.0 * total_moved / max(total_scanned, 1), secs,
           total_scanned / max(secs, 1e-9)), flush=True)


if __name__ == "__main__":
    main()
