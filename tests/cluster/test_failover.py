#!/usr/bin/python3
"""test_failover.py: a shard killed with SIGKILL behind twemproxy, with
the configuration of examples/cluster/nutcracker.yml.in
(auto_eject_hosts false) and shards under --sync always.

While three clients write through the proxy (single SETs, non-transactional
pipelines of 50 SETs, MSETs of 10 keys), one shard is killed at a random
moment (seeded: CALYPSO_SEED replays). Then:
- every request for a key of the dead shard (GET, SET, INCR, TTL, an MGET
  that includes one) fails with an error: never nil, never another value
  (after a split request's error, the proxy closes the connection);
- the other shards' keys keep answering, reads and writes;
- no write lands on a shard that does not own its key;
- restarted on the same --dbpath and port, the shard rejoins: every write
  acknowledged before, during and after the outage reads back through the
  proxy with its value.
Then the contrast that the README warns about: with auto_eject_hosts true
(a cache's setting), the proxy ejects the dead shard and re-hashes its keys
onto the others, so a GET of a stored key answers nil.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster  # noqa: E402
import cdtest  # noqa: E402
from cdtest import check, eq, finish, cleanup, seed  # noqa: E402
import redis  # noqa: E402


class Writer(threading.Thread):
    """Writes keys w:<kind>:<n> = v<n> through the proxy until told to stop;
    remembers what was acknowledged. An error reply (the dead shard) or a
    closed connection leaves the key unacknowledged; the writer goes on."""

    def __init__(self, cl, kind):
        super().__init__(daemon=True)
        self.cl, self.kind = cl, kind
        self.acked = {}
        self.errors = 0
        self.stop = False

    def run(self):
        r = self.cl.client()
        i = 0
        while not self.stop:
            keys = ["w:%s:%d" % (self.kind, i + j) for j in range({"single": 1, "pipe": 50, "mset": 10}[self.kind])]
            try:
                if self.kind == "single":
                    if r.set(keys[0], "v" + keys[0]):
                        self.acked[keys[0]] = "v" + keys[0]
                elif self.kind == "pipe":
                    p = r.pipeline(transaction=False)
                    for k in keys:
                        p.set(k, "v" + k)
                    for k, ok in zip(keys, p.execute(raise_on_error=False)):
                        if ok is True:
                            self.acked[k] = "v" + k
                        else:
                            self.errors += 1
                else:
                    # MSET is split by the proxy; an error from one shard makes
                    # the whole reply an error, though the others stored theirs.
                    if r.mset({k: "v" + k for k in keys}):
                        self.acked.update({k: "v" + k for k in keys})
            except redis.ResponseError:
                self.errors += 1
            except (redis.ConnectionError, redis.TimeoutError):
                self.errors += 1
                r = self.cl.client()
            i += len(keys)


def classify(cl, keys, n):
    """Each key's shard (index), asked of every shard directly."""
    where = {}
    for i in range(n):
        p = cl.direct(i).pipeline(transaction=False)
        for k in keys:
            p.exists(k)
        for k, e in zip(keys, p.execute()):
            if e:
                where.setdefault(k, []).append(i)
    return where


def error_of(fn):
    """The exception class fn raises, or ("answer", value)."""
    try:
        return ("answer", fn())
    except redis.ResponseError as e:
        return ("error", str(e)[:40])
    except (redis.ConnectionError, redis.TimeoutError) as e:
        return ("connection", str(e)[:40])


def test_sigkill(rnd):
    cl = Cluster(3)
    try:
        r = cl.client()
        pre = {"pre:%d" % i: str(i * 10) for i in range(300)}  # numbers: INCR would answer
        r.mset(pre)
        where = classify(cl, list(pre), 3)
        victim = rnd.randrange(3)
        dead_keys = [k for k in pre if where[k] == [victim]]
        live_keys = [k for k in pre if where[k] != [victim]]
        check(dead_keys and live_keys, "the victim and the others hold keys", (len(dead_keys), len(live_keys)))

        writers = [Writer(cl, k) for k in ("single", "pipe", "mset")]
        for w in writers:
            w.start()
        time.sleep(0.3 + rnd.random() * 0.7)
        cl.kill_shard(victim)
        print("  shard %d killed (SIGKILL)" % (victim + 1), flush=True)
        time.sleep(0.5)

        # the outage: errors for the victim's keys, answers for the others'
        outcomes = {}
        for k in dead_keys[:40]:
            for name, fn in (("GET", lambda: r.get(k)), ("SET", lambda: r.set(k, "new")),
                             ("INCR", lambda: r.incr(k)), ("TTL", lambda: r.ttl(k))):
                kind = error_of(fn)[0]
                outcomes.setdefault(name, set()).add(kind)
        eq(outcomes, {"GET": {"error"}, "SET": {"error"}, "INCR": {"error"}, "TTL": {"error"}},
           "every request for the dead shard's keys is an error reply")
        # A split request (MGET, MSET, DEL) with a fragment on the dead shard:
        # the proxy answers an error and then closes the client's connection.
        m = cdtest.Conn(cl.proxy.port)
        m.send(cdtest.cmd("MGET", live_keys[0], dead_keys[0]))
        got = m.read_quiet()
        check(got.startswith(b"-ERR ") and got.endswith(b"\r\n") and got.count(b"\r\n") == 1,
              "an MGET that includes a dead shard's key is an error, not a partial answer", got)
        check(m.closed, "after which the proxy closes the connection")
        m.close()
        # a client of its own: the connection closes after the error, and
        # a command sent before the close arrives gets "connection reset"
        once = cl.client()
        eq(error_of(lambda: once.mget([live_keys[0], dead_keys[0]]))[0], "error", "the same MGET from redis-py")
        eq([r.get(k) for k in live_keys], [pre[k].encode() for k in live_keys],
           "the other shards' keys answer during the outage")
        eq(r.set(live_keys[0], "changed"), True, "the other shards take writes during the outage")
        pre[live_keys[0]] = "changed"
        check(cl.proxy.proc.poll() is None, "the proxy stays up")

        cl.restart_shard(victim)
        end = time.time() + 10
        back = None
        while time.time() < end:
            back = error_of(lambda: r.get(dead_keys[0]))
            if back[0] == "answer":
                break
            time.sleep(0.1)
        eq(back, ("answer", pre[dead_keys[0]].encode()), "the restarted shard answers through the proxy")
        time.sleep(0.3)
        for w in writers:
            w.stop = True
        for w in writers:
            w.join(30)

        acked = dict(pre)
        for w in writers:
            acked.update(w.acked)
        errors = sum(w.errors for w in writers)
        print("  %d writes acknowledged, %d failed with errors during the outage" % (len(acked) - 300, errors),
              flush=True)
        check(errors > 0, "the writers met errors during the outage")
        keys = list(acked)
        got = []
        for i in range(0, len(keys), 1000):
            got += r.mget(keys[i:i + 1000])
        lost = [k for k, v in zip(keys, got) if v != acked[k].encode()]
        eq(lost[:5], [], "every acknowledged write reads back after the restart (%d keys)" % len(keys))
        where = classify(cl, keys, 3)
        eq([k for k in keys if len(where.get(k, [])) != 1][:5], [], "every key on exactly one shard")
    finally:
        cl.stop()


def test_auto_eject_reroutes():
    """auto_eject_hosts true: after the first failure the dead shard is
    ejected and its keys hash to the others: a GET of a stored key answers
    nil (a wrong answer for a store), and a write goes to another shard."""
    cl = Cluster(3, auto_eject=True, shard_args=())
    try:
        r = cl.client()
        keys = {"e:%d" % i: "x%d" % i for i in range(60)}
        r.mset(keys)
        victim = cl.owners("e:0")[0]
        cl.kill_shard(victim)
        # The proxy sees the connection close and ejects the shard at once
        # (server_failure_limit 1); a request that raced it gets an error.
        end = time.time() + 5
        got = error_of(lambda: r.get("e:0"))
        while got[0] != "answer" and time.time() < end:
            time.sleep(0.05)
            got = error_of(lambda: r.get("e:0"))
        eq(got, ("answer", None), "ejected: GET of a stored key answers nil")
        r.set("e:0", "elsewhere")
        survivors = [i for i in range(3) if i != victim]
        eq(sum(cl.direct(i).exists("e:0") for i in survivors), 1, "and a write lands on a shard that does not own the key")
    finally:
        cl.stop()


def main():
    rnd = seed()
    print("- test_sigkill", flush=True)
    test_sigkill(rnd)
    print("- test_auto_eject_reroutes", flush=True)
    test_auto_eject_reroutes()
    cleanup()
    finish()


if __name__ == "__main__":
    main()
