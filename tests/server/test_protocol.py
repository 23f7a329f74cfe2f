#!/usr/bin/python3
"""test_protocol.py: calypsod's wire protocol, byte for byte.

1. Every request of capture_redis.CASES gets exactly the bytes that
   redis-server 7.0.15 answered (protocol_replies.py), and the connection
   is closed exactly when Redis closed it: protocol errors, limits,
   inline parsing, error wordings, RESP3 types, MULTI/EXEC.
2. Where calypsod differs from Redis on purpose (strings only, KEYS in key
   order, empty keys, SCAN cursors), the exact bytes it sends instead.
3. Requests split at every byte, deep pipelines, runs of pipelined GETs
   (read together) broken by every other kind of request, big values, WATCH
   between two connections, CLIENT LIST/KILL, SCAN surviving writes, the
   key size limit and the SCAN cursor table at their boundaries.
4. Databases (SELECT, --databases): isolation, the per-database commands,
   MULTI/EXEC, WATCH, MOVE, COPY DB, FLUSHALL, INFO keyspace, restarts.
"""
import re
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import Server, check, eq, finish, cmd, cleanup, seed  # noqa: E402
from capture_redis import CASES  # noqa: E402
from protocol_replies import REPLIES  # noqa: E402


def norm(b):
    """HELLO's client id is the only field that differs run to run."""
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:N\r\n", b)


def run(srv, req, want=None, want_closed=False):
    """Sends req on a fresh connection; the reply bytes and whether the
    server closed. With `want`, reads that many bytes, then checks that
    nothing more comes (and waits for the close when one is expected)."""
    c = srv.conn()
    c.send(cmd("FLUSHALL"))
    c.read_until(5)
    c.send(req)
    if want is None or len(want) == 0:
        reply = c.read_quiet(0.3)
    else:
        reply = c.read_until(len(want), timeout=5)
        reply += c.read_quiet(0.5 if want_closed else 0.02)
    closed = c.closed
    c.close()
    return reply, closed


def redis_cases(srv):
    for name, req in CASES:
        want, want_closed = REPLIES[name]
        # a HELLO reply's length depends on the client id: read until quiet
        got, closed = run(srv, req, None if b"$2\r\nid\r\n" in want else want, want_closed)
        eq(norm(got), norm(want), "as redis: " + name)
        eq(closed, want_closed, "connection closed as redis does: " + name)


def own_cases(srv):
    def one(name, req, want):
        got, _ = run(srv, req, want)
        eq(got, want, name)

    one("lists are not supported: Redis's unknown-command error", cmd("LPUSH", "l", "a"),
        b"-ERR unknown command 'LPUSH', with args beginning with: 'l' 'a' \r\n")
    one("hashes", cmd("HSET", "h", "f", "v"),
        b"-ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' \r\n")
    one("sets", cmd("sadd", "s", "m"), b"-ERR unknown command 'sadd', with args beginning with: 's' 'm' \r\n")
    one("zsets", cmd("ZADD", "z", "1", "m"),
        b"-ERR unknown command 'ZADD', with args beginning with: 'z' '1' 'm' \r\n")
    one("KEYS with no pattern (CalypsoDB), in key order",
        cmd("SET", "b", "1") + cmd("SET", "a", "1") + cmd("SET", "ab", "1") + cmd("KEYS"),
        b"+OK\r\n+OK\r\n+OK\r\n*3\r\n$1\r\na\r\n$2\r\nab\r\n$1\r\nb\r\n")
    one("KEYS * and a glob", cmd("SET", "user:1", "x") + cmd("SET", "user:2", "y") + cmd("SET", "u", "z") +
        cmd("KEYS", "*") + cmd("KEYS", "user:*") + cmd("KEYS", "user:[2-9]"),
        b"+OK\r\n+OK\r\n+OK\r\n*3\r\n$1\r\nu\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n"
        b"*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n*1\r\n$6\r\nuser:2\r\n")
    one("empty key: writes refused, reads find nothing", cmd("SET", "", "v") + cmd("GET", "") + cmd("EXISTS", ""),
        b"-ERR empty keys are not supported by calypsod\r\n$-1\r\n:0\r\n")
    one("SELECT 15, the last of the default 16 databases", cmd("SELECT", "15"), b"+OK\r\n")
    one("CLIENT SETINFO (as Redis 7.2)", cmd("CLIENT", "SETINFO", "LIB-NAME", "x") +
        cmd("CLIENT", "SETINFO", "LIB-VER", "1.0") + cmd("CLIENT", "SETINFO", "FOO", "1"),
        b"+OK\r\n+OK\r\n-ERR Unrecognized option 'FOO'\r\n")
    one("COMMAND DOCS answers an empty map", cmd("COMMAND", "DOCS") + cmd("HELLO", "3")[:0], b"*0\r\n")
    one("CONFIG GET appendonly: calypso always persists", cmd("CONFIG", "GET", "appendonly"),
        b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n")
    one("SCAN of a cursor never handed out", cmd("SCAN", "12345"), b"-ERR invalid cursor\r\n")
    one("INFO keyspace", cmd("SET", "a", "1") + cmd("SET", "b", "2", "EX", "100") + cmd("INFO", "keyspace"),
        b"+OK\r\n+OK\r\n$44\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n\r\n")
    one("INFO keyspace, empty", cmd("INFO", "keyspace"), b"$12\r\n# Keyspace\r\n\r\n")
    got, _ = run(srv, cmd("INFO"))
    check(b"\r\nloading:0\r\n" in got and b"redis_version:7.0.15\r\n" in got and
          b"# Persistence\r\n" in got and b"# Keyspace\r\n" in got, "INFO: the fields clients parse", got[:200])
    got, _ = run(srv, cmd("COMMAND", "COUNT"))
    n = int(got[1:-2])
    got, _ = run(srv, cmd("COMMAND"))
    check(got.startswith(b"*%d\r\n*10\r\n" % n), "COMMAND: one 10-element entry per command", got[:40])


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def ex(c, req, want, what):
    """Sends req on connection c and checks the exact reply bytes."""
    c.send(req)
    got = c.read_until(len(want))
    got += c.read_quiet(0.02)
    return eq(got, want, what)


def databases(srv):
    """SELECT: each database its own key space, per-database DBSIZE,
    FLUSHDB, KEYS, SCAN, RANDOMKEY, WATCH and MULTI/EXEC; FLUSHALL, INFO
    keyspace, MOVE, COPY DB, SWAPDB's refusal, CLIENT LIST's db=."""
    a, b = srv.conn(), srv.conn()
    ex(a, cmd("FLUSHALL"), b"+OK\r\n", "FLUSHALL first")
    ex(a, cmd("SET", "k", "zero") + cmd("SELECT", "3") + cmd("GET", "k") + cmd("SET", "k", "three") +
       cmd("GET", "k") + cmd("SELECT", "0") + cmd("GET", "k"),
       b"+OK\r\n+OK\r\n$-1\r\n+OK\r\n$5\r\nthree\r\n+OK\r\n$4\r\nzero\r\n",
       "SELECT: the same key in db 0 and db 3 is two keys")
    ex(b, cmd("SELECT", "4") + cmd("GET", "k") + cmd("DBSIZE") + cmd("KEYS", "*") + cmd("SCAN", "0") +
       cmd("RANDOMKEY") + cmd("EXISTS", "k") + cmd("TTL", "k") + cmd("MGET", "k", "k"),
       b"+OK\r\n$-1\r\n:0\r\n*0\r\n*2\r\n$1\r\n0\r\n*0\r\n$-1\r\n:0\r\n:-2\r\n"
       b"*2\r\n$-1\r\n$-1\r\n", "a database never written: empty to every read")
    ex(b, cmd("SELECT", "3") + cmd("MSET", "a", "1", "b", "2") + cmd("DBSIZE") + cmd("KEYS", "*") +
       cmd("SCAN", "0", "MATCH", "[ab]"),
       b"+OK\r\n+OK\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nk\r\n"
       b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n", "DBSIZE, KEYS, SCAN of db 3")
    ex(a, cmd("DBSIZE") + cmd("KEYS", "*") + cmd("RANDOMKEY"),
       b":1\r\n*1\r\n$1\r\nk\r\n$1\r\nk\r\n", "db 0 does not see db 3's keys")
    ex(a, cmd("SET", "e", "v", "EX", "100") + cmd("SELECT", "3") + cmd("EXPIRE", "a", "100") +
       cmd("INFO", "keyspace"),
       b"+OK\r\n+OK\r\n:1\r\n" + bulk(b"# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"
                                       b"db3:keys=3,expires=1,avg_ttl=0\r\n"),
       "INFO keyspace: one line per database with keys")
    b.send(cmd("CLIENT", "LIST"))
    got = b.read_quiet(0.2)
    mine = [line for line in got.split(b"\n") if b" cmd=client|list " in line]
    check(len(mine) == 1 and b" db=3 " in mine[0], "CLIENT LIST: db=3 for a client in db 3", got[:400])
    # WATCH is per database: a write of the same key in another db does not touch it
    ex(a, cmd("WATCH", "a"), b"+OK\r\n", "WATCH a in db 3")
    ex(b, cmd("SELECT", "0") + cmd("SET", "a", "db0"), b"+OK\r\n+OK\r\n", "SET a in db 0")
    ex(a, cmd("MULTI") + cmd("INCR", "a") + cmd("GET", "a") + cmd("EXEC"),
       b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:2\r\n$1\r\n2\r\n",
       "EXEC runs in the selected db; a write in another db does not touch the watch")
    ex(a, cmd("WATCH", "a"), b"+OK\r\n", "WATCH a again")
    ex(b, cmd("SELECT", "3") + cmd("SET", "a", "x"), b"+OK\r\n+OK\r\n", "SET a in db 3")
    ex(a, cmd("MULTI") + cmd("GET", "a") + cmd("EXEC"), b"+OK\r\n+QUEUED\r\n*-1\r\n",
       "a write in the watched key's db aborts EXEC")
    ex(a, cmd("MULTI") + cmd("SET", "t", "1") + cmd("SELECT", "6") + cmd("SET", "t", "6") +
       cmd("MOVE", "t", "7") + cmd("EXEC") + cmd("GET", "t") + cmd("SELECT", "7") + cmd("GET", "t") +
       cmd("SELECT", "3") + cmd("GET", "t"),
       b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n+OK\r\n+OK\r\n:1\r\n"
       b"$-1\r\n+OK\r\n$1\r\n6\r\n+OK\r\n$1\r\n1\r\n",
       "SELECT and MOVE inside MULTI: the rest of the block (and the client) in the new db")
    ex(b, cmd("SELECT", "11") + cmd("MULTI") + cmd("GET", "t") + cmd("EXISTS", "t") + cmd("KEYS", "*") +
       cmd("EXEC") + cmd("SELECT", "3"),
       b"+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$-1\r\n:0\r\n*0\r\n+OK\r\n",
       "a read-only block in a database never written")
    # MOVE
    ex(a, cmd("SELECT", "3") + cmd("SET", "m", "v", "EX", "1000") + cmd("MOVE", "m", "5") + cmd("GET", "m") +
       cmd("SELECT", "5") + cmd("GET", "m") + cmd("TTL", "m"),
       b"+OK\r\n+OK\r\n:1\r\n$-1\r\n+OK\r\n$1\r\nv\r\n:1000\r\n", "MOVE keeps the value and the TTL")
    ex(a, cmd("SET", "m2", "five") + cmd("SELECT", "3") + cmd("SET", "m2", "three") + cmd("MOVE", "m2", "5") +
       cmd("MOVE", "nosuch", "5") + cmd("MOVE", "m2", "3") + cmd("MOVE", "m2", "16") + cmd("MOVE", "m2", "x") +
       cmd("GET", "m2"),
       b"+OK\r\n+OK\r\n+OK\r\n:0\r\n:0\r\n-ERR source and destination objects are the same\r\n"
       b"-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n$5\r\nthree\r\n",
       "MOVE: 0 when the target has the key or the key is missing; Redis's errors")
    ex(a, cmd("COPY", "m2", "m3", "DB", "9") + cmd("COPY", "m2", "m2", "DB", "5") +
       cmd("COPY", "m2", "m2", "DB", "5", "REPLACE") + cmd("SELECT", "9") + cmd("GET", "m3") +
       cmd("SELECT", "5") + cmd("GET", "m2") + cmd("COPY", "m2", "m2", "DB", "16"),
       b":1\r\n:0\r\n:1\r\n+OK\r\n$5\r\nthree\r\n+OK\r\n$5\r\nthree\r\n"
       b"-ERR DB index is out of range\r\n", "COPY ... DB n")
    ex(a, cmd("SWAPDB", "0", "1") + cmd("SWAPDB", "0", "16"),
       b"-ERR SWAPDB is not supported by calypsod: its databases are namespaces on disk and cannot "
       b"be swapped atomically\r\n-ERR DB index is out of range\r\n", "SWAPDB is refused")
    # FLUSHDB clears the selected db only; FLUSHALL every db
    ex(a, cmd("SELECT", "3") + cmd("FLUSHDB") + cmd("DBSIZE") + cmd("SELECT", "0") + cmd("DBSIZE"),
       b"+OK\r\n+OK\r\n:0\r\n+OK\r\n:3\r\n", "FLUSHDB in db 3 leaves db 0")
    ex(a, cmd("FLUSHALL") + cmd("INFO", "keyspace") + cmd("SELECT", "5") + cmd("DBSIZE"),
       b"+OK\r\n$12\r\n# Keyspace\r\n\r\n+OK\r\n:0\r\n", "FLUSHALL clears every db")
    # RESET goes back to db 0; HELLO keeps the db
    ex(a, cmd("SELECT", "2") + cmd("SET", "r", "2") + cmd("HELLO", "2")[:0] + cmd("RESET") + cmd("GET", "r"),
       b"+OK\r\n+OK\r\n+RESET\r\n$-1\r\n", "RESET returns to db 0")
    a.close()
    b.close()


def databases_limit():
    """--databases N: SELECT N-1 works, SELECT N is out of range; data in a
    database other than 0 is there after a restart."""
    srv = Server("--databases", "6")
    try:
        c = srv.conn()
        ex(c, cmd("SELECT", "5") + cmd("SET", "p", "five") + cmd("SELECT", "6") + cmd("SELECT", "-1") +
           cmd("CONFIG", "GET", "databases"),
           b"+OK\r\n+OK\r\n-ERR DB index is out of range\r\n-ERR DB index is out of range\r\n"
           b"*2\r\n$9\r\ndatabases\r\n$1\r\n6\r\n", "--databases 6: db 5 is the last")
        c.close()
        eq(srv.stop(), 0, "stopped")
        srv = Server("--databases", "6", dbpath=srv.dbpath)
        c = srv.conn()
        ex(c, cmd("GET", "p") + cmd("SELECT", "5") + cmd("GET", "p") + cmd("INFO", "keyspace"),
           b"$-1\r\n+OK\r\n$4\r\nfive\r\n" + bulk(b"# Keyspace\r\ndb5:keys=1,expires=0,avg_ttl=0\r\n"),
           "after a restart: db 5's key is there, in db 5 only")
        c.close()
        eq(srv.stop(), 0, "stopped")
        # a smaller --databases leaves db 5 alone: out of reach, not lost
        srv = Server("--databases", "5", dbpath=srv.dbpath)
        c = srv.conn()
        ex(c, cmd("SELECT", "5") + cmd("FLUSHALL") + cmd("INFO", "keyspace"),
           b"-ERR DB index is out of range\r\n+OK\r\n$12\r\n# Keyspace\r\n\r\n",
           "--databases 5: db 5 out of range")
        c.close()
        eq(srv.stop(), 0, "stopped")
        srv = Server("--databases", "6", dbpath=srv.dbpath)
        c = srv.conn()
        ex(c, cmd("SELECT", "5") + cmd("GET", "p"), b"+OK\r\n$4\r\nfive\r\n",
           "db 5 back with --databases 6")
        c.close()
    finally:
        eq(srv.stop(), 0, "stopped")


def split_every_byte(srv):
    req = (cmd("SET", "k", "v\x00\r\nx") + b"GET k\r\n" + cmd("MULTI") + cmd("INCR", "n") +
           cmd("EXEC") + b"\r\n" + b'ECHO "a b"\n' + cmd("MGET", "k", "n", "zz"))
    whole, _ = run(srv, req)
    c = srv.conn()
    c.send(cmd("FLUSHALL"))
    c.read_until(5)
    for i in range(len(req)):
        c.send(req[i:i + 1])
        time.sleep(0.0005)
    got = c.read_quiet(0.3)
    c.close()
    eq(got, whole, "a pipeline sent one byte at a time gets the same bytes")
    eq(whole, b"+OK\r\n$5\r\nv\x00\r\nx\r\n+OK\r\n+QUEUED\r\n*1\r\n:1\r\n$3\r\na b\r\n"
       b"*3\r\n$5\r\nv\x00\r\nx\r\n$1\r\n1\r\n$-1\r\n", "the pipeline's replies")


def random_splits(srv, rnd):
    reqs = []
    want = b""
    for i in range(300):
        k = "k%d" % rnd.randrange(50)
        v = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
        reqs.append(cmd("SET", k, v) + cmd("GET", k))
        want += b"+OK\r\n$%d\r\n%s\r\n" % (len(v), v)
    data = b"".join(reqs)
    c = srv.conn()
    pos = 0
    while pos < len(data):
        n = rnd.randrange(1, 200)
        c.send(data[pos:pos + n])
        pos += n
        if rnd.random() < 0.2:
            time.sleep(0.001)
    got = c.read_until(len(want), timeout=10)
    c.close()
    eq(got, want, "random splits of 600 pipelined requests")


def deep_pipeline(srv):
    n = 20000
    data = b"".join(cmd("INCR", "ctr") for _ in range(n)) + b"PING\r\n" * n
    want = b"".join(b":%d\r\n" % (i + 1) for i in range(n)) + b"+PONG\r\n" * n
    c = srv.conn()
    c.send(data)
    got = c.read_until(len(want), timeout=20)
    c.close()
    eq(len(got), len(want), "20000 INCR + 20000 inline PING in one write: every reply")
    check(got == want, "... in order")


def big_values(srv, rnd):
    c = srv.conn()
    for size in (0, 1, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 1 << 20, 16 << 20):
        v = bytes(rnd.randrange(256) for _ in range(min(size, 4096))) * (size // 4096 + 1)
        v = v[:size]
        c.send(cmd("SET", "big", v) + cmd("GET", "big") + cmd("STRLEN", "big"))
        want = b"+OK\r\n$%d\r\n%s\r\n:%d\r\n" % (size, v, size)
        got = c.read_until(len(want), timeout=30)
        check(got == want, "a %d-byte value round-trips" % size, got[:40])
    c.close()


def watch_two_clients(srv):
    a, b = srv.conn(), srv.conn()
    a.send(cmd("WATCH", "w"))
    eq(a.read_until(5), b"+OK\r\n", "WATCH")
    b.send(cmd("SET", "w", "other"))
    eq(b.read_until(5), b"+OK\r\n", "another client writes the watched key")
    a.send(cmd("MULTI") + cmd("SET", "w", "mine") + cmd("EXEC") + cmd("GET", "w"))
    want = b"+OK\r\n+QUEUED\r\n*-1\r\n$5\r\nother\r\n"
    eq(a.read_until(len(want)), want, "EXEC is refused: null array")
    a.send(cmd("WATCH", "w") + cmd("MULTI") + cmd("SET", "w", "mine") + cmd("EXEC") + cmd("GET", "w"))
    want = b"+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n$4\r\nmine\r\n"
    eq(a.read_until(len(want)), want, "untouched: EXEC runs")
    a.send(cmd("WATCH", "w2"))
    a.read_until(5)
    b.send(cmd("SET", "w2", "x") + cmd("FLUSHALL"))
    b.read_until(10)
    a.send(cmd("MULTI") + cmd("PING") + cmd("EXEC"))
    want = b"+OK\r\n+QUEUED\r\n*-1\r\n"
    eq(a.read_until(len(want)), want, "FLUSHALL touches a watched key that existed")
    a.send(cmd("SET", "w3", "v", "PX", "50") + cmd("WATCH", "w3"))
    a.read_until(10)
    time.sleep(0.1)
    a.send(cmd("MULTI") + cmd("PING") + cmd("EXEC"))
    eq(a.read_until(len(want)), want, "a watched key that expired aborts EXEC")
    a.close()
    b.close()


def client_commands(srv):
    a, b = srv.conn(), srv.conn()
    b.send(cmd("CLIENT", "ID"))
    bid = int(b.read_until(3)[1:-2])
    a.send(cmd("CLIENT", "SETNAME", "alpha") + cmd("CLIENT", "LIST"))
    got = a.read_quiet(0.2)
    check(b" name=alpha " in got and (b"id=%d " % bid) in got, "CLIENT LIST shows both clients", got[:300])
    a.send(cmd("CLIENT", "KILL", "ID", str(bid)))
    eq(a.read_until(4), b":1\r\n", "CLIENT KILL ID: one client killed")
    b.read_quiet(0.3)
    check(b.closed, "the killed client's connection is closed")
    a.send(cmd("CLIENT", "KILL", "ID", str(bid)))
    eq(a.read_until(4), b":0\r\n", "killing it again: none")
    a.close()
    b.close()


def scan_survives_writes(srv, rnd):
    c = srv.conn()
    keys = ["key:%05d" % i for i in range(2000)]
    c.send(b"".join(cmd("SET", k, "v") for k in keys))
    c.read_until(5 * len(keys), timeout=20)
    seen = []
    cursor = b"0"
    extra = 0
    while True:
        c.send(cmd("SCAN", cursor, "MATCH", "key:*", "COUNT", "97"))
        head = c.read_until(4)
        rest = c.read_quiet(0.05)
        data = head + rest
        parts = data.split(b"\r\n")
        cursor = parts[2]
        n = int(parts[3][1:])
        page = [parts[5 + 2 * i] for i in range(n)]
        seen += page
        # writes between pages: new keys around, and deletes of keys not yet returned are
        # not done (they may or may not be seen); keys that live the whole scan must come once
        c.send(cmd("SET", "key:%05d.new%d" % (rnd.randrange(2000), extra), "n") + cmd("SET", "aaa%d" % extra, "x"))
        c.read_until(10)
        extra += 1
        if cursor == b"0":
            break
    base = [s for s in seen if b".new" not in s]
    eq(base, [k.encode() for k in keys], "SCAN returns every key that lived the whole scan once, in order")
    check(len(set(seen)) == len(seen), "no key twice")
    c.close()


def key_size_limit(srv):
    c = srv.conn()
    k = b"k" * 65527
    eq(c.roundtrip(cmd("SET", k, "v") + cmd("GET", k), 12), b"+OK\r\n$1\r\nv\r\n",
       "a key of 65527 bytes (the engine's limit) is stored")
    k2 = b"k" * 65528
    want = b"-ERR key too large for this database (calypsod accepts keys up to 65527 bytes)\r\n$-1\r\n"
    eq(c.roundtrip(cmd("SET", k2, "v") + cmd("GET", k2), len(want)), want, "a key of 65528 bytes is refused")
    c.close()


def scan_cursor_table(srv):
    """The server keeps the last 16384 cursors it handed out."""
    c = srv.conn()
    c.send(cmd("FLUSHALL") + cmd("SET", "a", "1") + cmd("SET", "b", "2") + cmd("SET", "c", "3"))
    c.read_until(20)

    def first_page():
        c.send(cmd("SCAN", "0", "COUNT", "1"))
        head = c.read_until(4)
        data = head + c.read_quiet(0.05)
        return data.split(b"\r\n")[2]
    oldest = first_page()
    c.send(cmd("SCAN", "0", "COUNT", "1") * 16382)
    c.read_quiet(0.3, timeout=30)
    newest_kept = first_page()  # the 16384th cursor since `oldest`
    eq(c.roundtrip(cmd("SCAN", oldest), 29), b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n", "16384 cursors later, the oldest still resumes")
    first_page()  # the 16385th: the oldest is forgotten
    eq(c.roundtrip(cmd("SCAN", oldest), 22), b"-ERR invalid cursor\r\n", "16385 cursors later, it is forgotten")
    eq(c.roundtrip(cmd("SCAN", newest_kept), 29), b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n", "a recent cursor still resumes")
    c.close()


def pipelined_gets(srv, rnd):
    """Runs of pipelined GETs are read together (calypso_get_many); the
    replies must be exactly those of one GET at a time, in order, whatever
    breaks a run: a write of the same key, an inline GET, MULTI, a wrong
    arity, MGET, runs longer than one group."""
    model = {}
    data, want = [], []

    def bulk(v):
        return b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)
    for i in range(3000):
        k = b"g%d" % rnd.randrange(60)
        r = rnd.random()
        if r < 0.55:
            data.append(cmd("GET", k))
            want.append(bulk(model.get(k)))
        elif r < 0.75:
            v = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 30)))
            model[k] = v
            data.append(cmd("SET", k, v))
            want.append(b"+OK\r\n")
        elif r < 0.8:
            data.append(b"GET " + k + b"\r\n")
            want.append(bulk(model.get(k)))
        elif r < 0.84:
            data.append(cmd("MULTI") + cmd("GET", k) + cmd("EXEC"))
            want.append(b"+OK\r\n+QUEUED\r\n*1\r\n" + bulk(model.get(k)))
        elif r < 0.87:
            data.append(cmd("GET", k, "extra"))
            want.append(b"-ERR wrong number of arguments for 'get' command\r\n")
        elif r < 0.9:
            data.append(cmd("GET", ""))
            want.append(b"$-1\r\n")
        elif r < 0.95:
            ks = [b"g%d" % rnd.randrange(60) for _ in range(rnd.randrange(1, 40))]
            data.append(cmd("MGET", *ks))
            want.append(b"*%d\r\n" % len(ks) + b"".join(bulk(model.get(x)) for x in ks))
        else:
            run_len = rnd.randrange(15, 50)
            for _ in range(run_len):
                x = b"g%d" % rnd.randrange(80)
                data.append(cmd("GET", x))
                want.append(bulk(model.get(x)))
    data, want = b"".join(data), b"".join(want)
    c = srv.conn()
    c.send(cmd("FLUSHALL"))
    c.read_until(5)
    c.send(data)
    got = c.read_until(len(want), timeout=20)
    c.close()
    eq(len(got), len(want), "pipelined GETs among writes, MULTI, MGET: every reply")
    check(got == want, "... byte for byte, in order", got[:0])


def main():
    rnd = seed()
    srv = Server()
    try:
        redis_cases(srv)
        own_cases(srv)
        split_every_byte(srv)
        random_splits(srv, rnd)
        deep_pipeline(srv)
        pipelined_gets(srv, rnd)
        big_values(srv, rnd)
        watch_two_clients(srv)
        databases(srv)
        databases_limit()
        client_commands(srv)
        scan_survives_writes(srv, rnd)
        key_size_limit(srv)
        scan_cursor_table(srv)
    finally:
        rc = srv.stop()
        eq(rc, 0, "calypsod exits 0 on SIGTERM")
        cleanup()
    finish()


main()
