#!/usr/bin/python3
"""test_redis_py.py: calypsod through python3-redis (Debian's 4.3.4),
unchanged: the default pipeline (transaction=True: MULTI ... EXEC),
transaction=False, scan_iter, set with ex/px/nx, incr (INCRBY), info,
binary values, WATCH with the optimistic-locking helper, errors as
exceptions, AUTH/CLIENT SETNAME/SELECT on connect, databases (db=N).
"""
import sys

import redis

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import Server, check, eq, finish, cleanup  # noqa: E402


def basics(r):
    eq(r.ping(), True, "ping")
    eq(r.set("foo", "bar", ex=10), True, "set ex")
    check(8 <= r.ttl("foo") <= 10, "ttl after set ex", r.ttl("foo"))
    eq(r.get("foo"), b"bar", "get")
    eq(r.set("foo", "baz", nx=True), None, "set nx on an existing key")
    eq(r.set("foo2", "x", px=5000, nx=True), True, "set px nx")
    eq(r.incr("counter"), 1, "incr (sent as INCRBY)")
    eq(r.incr("counter", 41), 42, "incrby")
    eq(r.decr("counter", 2), 40, "decrby")
    eq(r.incrbyfloat("fl", 2.5), 2.5, "incrbyfloat")
    eq(r.mset({"m1": "1", "m2": "2"}), True, "mset")
    eq(r.mget("m1", "m2", "nope"), [b"1", b"2", None], "mget")
    blob = bytes(range(256)) * 100
    r.set(b"bin\x00key", blob)
    eq(r.get(b"bin\x00key"), blob, "binary key and value")
    eq(r.exists("m1", "m2", "nope"), 2, "exists")
    eq(r.delete("m1", "nope"), 1, "delete")
    eq(r.type("m2"), b"string", "type")
    eq(r.getrange("foo", 0, 1), b"ba", "getrange")
    eq(r.append("foo", "!"), 4, "append")
    eq(r.expire("foo", 100), True, "expire")
    eq(r.persist("foo"), True, "persist")
    eq(r.ttl("foo"), -1, "ttl after persist")
    eq(r.getdel("foo"), b"bar!", "getdel")
    eq(r.getex("m2", ex=50), b"2", "getex")
    eq(r.rename("m2", "m3"), True, "rename")
    eq(r.dbsize(), len(r.keys("*")), "dbsize matches keys")
    try:
        r.incr("fl")
        check(False, "incr of a float raises")
    except redis.ResponseError as e:
        eq(str(e), "value is not an integer or out of range", "incr error text")
    try:
        r.execute_command("LPUSH", "l", "a")
        check(False, "LPUSH raises")
    except redis.ResponseError as e:
        check(str(e).startswith("unknown command 'LPUSH'"), "LPUSH: unknown command", str(e))


def pipelines(r):
    p = r.pipeline()  # transaction=True by default: MULTI ... EXEC
    p.set("p1", "a").get("p1").incr("p2").incr("p2")
    eq(p.execute(), [True, b"a", 1, 2], "default (transactional) pipeline")
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.set("np:%d" % i, i)
    check(all(p.execute()), "plain pipeline of 1000 sets")
    p = r.pipeline()
    p.set("t", "x").incr("t").get("t")
    res = p.execute(raise_on_error=False)
    check(res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] == b"x",
          "a run-time error inside EXEC is one element", res)

    def bump(pipe):
        v = int(pipe.get("watched") or 0)
        pipe.multi()
        pipe.set("watched", v + 1)
    for _ in range(5):
        r.transaction(bump, "watched")
    eq(r.get("watched"), b"5", "transaction() with WATCH")


def scanning(r):
    r.flushdb()
    for i in range(500):
        r.set("scan:%03d" % i, "v")
        r.set("other:%03d" % i, "v")
    got = list(r.scan_iter(match="scan:*", count=100))
    eq(sorted(got), sorted(b"scan:%03d" % i for i in range(500)), "scan_iter(match, count)")
    eq(len(got), 500, "scan_iter: each key once")
    eq(len(r.keys("other:*")), 500, "keys(pattern)")


def info(r):
    i = r.info()
    eq(i.get("loading"), 0, "info: loading 0")
    eq(i.get("redis_version"), "7.0.15", "info: redis_version")
    check("db0" in i and i["db0"]["keys"] == r.dbsize(), "info: db0 keys", i.get("db0"))
    eq(r.info("keyspace")["db0"]["keys"], r.dbsize(), "info keyspace")
    eq(r.config_get("maxclients"), {"maxclients": "10000"}, "config get")
    eq(r.time()[0] > 1600000000, True, "time")
    eq(r.echo(b"a\x00b"), b"a\x00b", "echo binary")


def databases(srv, srv_pw):
    """redis.Redis(db=2): SELECT 2 on connect; each database its own keys,
    with the transactional pipeline, scan_iter, info and flushdb."""
    r0 = redis.Redis(port=srv.port)
    r2 = redis.Redis(port=srv.port, db=2)
    r0.flushall()
    eq(r0.set("k", "zero"), True, "db 0: set")
    eq(r2.get("k"), None, "db=2 does not see db 0's key")
    eq(r2.set("k", "two", ex=100), True, "db=2: set ex")
    eq((r0.get("k"), r2.get("k")), (b"zero", b"two"), "the same key in db 0 and db 2")
    p = r2.pipeline()
    p.incr("n").incr("n").get("k")
    eq(p.execute(), [1, 2, b"two"], "db=2: transactional pipeline (MULTI/EXEC) in db 2")
    eq(r0.get("n"), None, "... its writes are in db 2 only")
    for i in range(120):
        r2.set("s:%03d" % i, "v")
    eq(sorted(r2.scan_iter(match="s:*", count=25)), sorted(b"s:%03d" % i for i in range(120)),
       "db=2: scan_iter")
    eq(r2.dbsize(), 122, "db=2: dbsize")
    eq(r0.dbsize(), 1, "db 0: dbsize")
    ks = r0.info("keyspace")
    eq((ks.get("db0", {}).get("keys"), ks.get("db2", {}).get("keys"), ks.get("db2", {}).get("expires")),
       (1, 122, 1), "info keyspace: db0 and db2")
    eq(r2.move("k", 0), False, "move onto an existing key: False")
    eq(r2.move("n", 5), True, "move to db 5")
    eq(redis.Redis(port=srv.port, db=5).get("n"), b"2", "db 5 has the moved key")
    c = r2.client_list()
    check(c and all(x["db"] == "2" for x in c if x["id"] == str(r2.client_id())),
          "client_list: db=2", c)
    eq(r2.flushdb(), True, "db=2: flushdb")
    eq((r2.dbsize(), r0.dbsize()), (0, 1), "flushdb cleared db 2 only")
    r9 = redis.Redis(port=srv_pw.port, password="pw", db=9)
    eq(r9.set("x", "nine"), True, "password + db=9")
    eq(redis.Redis(port=srv_pw.port, password="pw").get("x"), None, "... not in db 0")
    try:
        redis.Redis(port=srv.port, db=16).ping()
        check(False, "db=16 raises")
    except redis.ResponseError as e:
        eq(str(e), "DB index is out of range", "db=16: Redis's error")


def connect_options(srv_pw):
    r = redis.Redis(port=srv_pw.port, password="pw", client_name="myapp", db=0)
    eq(r.ping(), True, "password + client_name + db=0")
    eq(r.client_getname(), "myapp", "client_getname")
    eq(r.client_id() > 0, True, "client_id")
    r = redis.Redis(port=srv_pw.port, username="default", password="pw")
    eq(r.ping(), True, "username default + password")
    try:
        redis.Redis(port=srv_pw.port, password="wrong").ping()
        check(False, "a wrong password raises")
    except redis.RedisError as e:
        check("invalid username-password pair" in str(e), "wrong password: WRONGPASS", str(e))
    try:
        redis.Redis(port=srv_pw.port).get("k")
        check(False, "no password raises")
    except redis.RedisError as e:
        eq(str(e), "Authentication required.", "no password: NOAUTH")


def main():
    srv = Server()
    srv_pw = Server("--requirepass", "pw")
    try:
        r = redis.Redis(port=srv.port)
        basics(r)
        pipelines(r)
        scanning(r)
        info(r)
        connect_options(srv_pw)
        databases(srv, srv_pw)
        eq(r.flushall(), True, "flushall")
        eq(r.dbsize(), 0, "dbsize after flushall")
    finally:
        eq(srv.stop(), 0, "calypsod exits 0")
        eq(srv_pw.stop(), 0, "calypsod (requirepass) exits 0")
        cleanup()
    finish()


main()
