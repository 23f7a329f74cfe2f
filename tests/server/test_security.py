#!/usr/bin/python3
"""test_security.py: calypsod's defences, each at its boundary and past it.

- protected mode: listening on every interface without a password, a
  client that is not 127.0.0.1/::1 (here: from source address 127.0.0.2)
  gets Redis's DENIED text and is closed; loopback clients are served;
  --protected-mode no and --requirepass lift it;
- requirepass: NOAUTH, WRONGPASS, AUTH; before AUTH at most 10 elements
  and 16384-byte bulks per request (Redis 7.0's limits);
- oversize requests refused at once, memory not grown: bulk of 512 MB
  accepted as a header, 512 MB + 1 refused; inline line and count lines of
  64 KiB wait for their end, 64 KiB + 1 refused;
- --maxclients: N connections served, the N+1th refused; 10,000 idle
  connections at once (the default maxclients), then served normally;
- a slow reader: replies past --output-limit close it, the server's
  memory stays bounded; a reader under the limit keeps its replies.
"""
import resource
import socket
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import Server, Conn, check, eq, finish, cmd, cleanup  # noqa: E402

DENIED_START = b"-DENIED Redis is running in protected mode because protected mode is enabled"


def protected_mode():
    srv = Server(bind_host="")  # --bind :PORT
    try:
        c = Conn(srv.port, source="127.0.0.2")
        c.send(cmd("PING"))
        got = c.read_quiet(0.5)
        check(got.startswith(DENIED_START) and got.endswith(
            b"the server to start accepting connections from the outside.\r\n"), "non-loopback client: DENIED", got[:80])
        check(c.closed, "non-loopback client: closed")
        c = Conn(srv.port)
        eq(c.roundtrip(cmd("PING"), 7), b"+PONG\r\n", "loopback client served")
    finally:
        srv.stop()
    srv = Server("--protected-mode", "no", bind_host="")
    try:
        c = Conn(srv.port, source="127.0.0.2")
        eq(c.roundtrip(cmd("PING"), 7), b"+PONG\r\n", "--protected-mode no: served")
    finally:
        srv.stop()
    srv = Server("--requirepass", "pw", bind_host="")
    try:
        c = Conn(srv.port, source="127.0.0.2")
        expect(c, cmd("PING"), b"-NOAUTH Authentication required.\r\n", "with a password: NOAUTH")
        eq(c.roundtrip(cmd("AUTH", "pw") + cmd("PING"), 12), b"+OK\r\n+PONG\r\n", "then AUTH")
    finally:
        srv.stop()


WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def expect(c, req, want, what):
    """Sends req and checks that exactly the bytes of want come back."""
    c.send(req)
    return eq(c.read_until(len(want)), want, what)


def requirepass():
    srv = Server("--requirepass", "s3cret")
    try:
        c = srv.conn()
        expect(c, cmd("GET", "k"), b"-NOAUTH Authentication required.\r\n", "NOAUTH")
        expect(c, cmd("AUTH", "nope"), WRONGPASS, "WRONGPASS")
        expect(c, cmd("AUTH", "other", "s3cret"), WRONGPASS, "another user: WRONGPASS")
        expect(c, cmd("HELLO", "3"),
               b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
               b"HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
               b"select the RESP protocol version at the same time\r\n", "HELLO before AUTH")
        expect(c, cmd("AUTH", "s3cret") + cmd("GET", "k"), b"+OK\r\n$-1\r\n", "AUTH then GET")
        c = srv.conn()
        expect(c, cmd("AUTH", "a", "b", "c"), b"-ERR syntax error\r\n", "AUTH arity")
        c = srv.conn()
        expect(c, cmd(*(["AUTH"] + ["x"] * 9)), b"-ERR syntax error\r\n", "unauthenticated: 10 elements parsed")
        c = srv.conn()
        expect(c, cmd(*(["AUTH"] + ["x"] * 10)), b"-ERR Protocol error: unauthenticated multibulk length\r\n",
               "unauthenticated: 11 elements refused")
        c.read_quiet(0.3)
        check(c.closed, "... and closed")
        c = srv.conn()
        expect(c, cmd("AUTH", "x" * 16384), WRONGPASS, "unauthenticated: 16384-byte bulk parsed")
        c = srv.conn()
        expect(c, cmd("AUTH", "x" * 16385), b"-ERR Protocol error: unauthenticated bulk length\r\n",
               "unauthenticated: 16385-byte bulk refused")
        c = srv.conn()
        expect(c, cmd("AUTH", "s3cret"), b"+OK\r\n", "AUTH")
        expect(c, cmd(*(["MSET"] + ["k", "v"] * 20)) + cmd("ECHO", "y" * 20000),
               b"+OK\r\n$20000\r\n" + b"y" * 20000 + b"\r\n", "after AUTH: no such limits")
    finally:
        eq(srv.stop(), 0, "requirepass server exits 0")


def oversize():
    srv = Server()
    try:
        c = srv.conn()
        c.send(cmd("SET", "k", "v"))
        c.read_until(5)
        rss0 = srv.rss_kb()
        c = srv.conn()
        c.send(b"*2\r\n$3\r\nGET\r\n$536870912\r\n")
        eq(c.read_quiet(0.3), b"", "a bulk of exactly 512 MB is a valid header: it waits for the bytes")
        check(not c.closed, "... the connection stays open")
        d = srv.conn()
        d.send(b"*2\r\n$3\r\nGET\r\n$536870913\r\n")
        eq(d.read_quiet(0.5), b"-ERR Protocol error: invalid bulk length\r\n", "512 MB + 1 refused")
        check(d.closed, "... and closed")
        conns = []
        for _ in range(50):  # 50 clients announcing 512 MB each
            e = srv.conn()
            e.send(b"*2\r\n$3\r\nSET\r\n$536870912\r\n" + b"z" * 1000)
            conns.append(e)
        time.sleep(0.3)
        grew = srv.rss_kb() - rss0
        check(grew < 64 * 1024, "50 clients announcing 512 MB bulks grow the server by less than 64 MB", "%d KB" % grew)
        for e in conns:
            e.close()
        c.close()
        for what, before, line, err in (("inline line", b"", b"", b"too big inline request"),
                                        ("multibulk count line", b"", b"*", b"too big mbulk count string"),
                                        ("bulk count line", b"*1\r\n", b"$", b"too big bulk count string")):
            c = srv.conn()
            c.send(before + line + b"1" * (65536 - len(line)))
            eq(c.read_quiet(0.3), b"", "%s of 64 KiB without its end: waits" % what)
            c.send(b"1")
            got = c.read_quiet(0.5)
            eq(got, b"-ERR Protocol error: " + err + b"\r\n", "%s of 64 KiB + 1: refused" % what)
            check(c.closed, "... and closed")
        c = srv.conn()
        line = b"ECHO " + b"a" * (65536 - 7) + b"\r\n"
        eq(len(line), 65536, "(the inline line is 64 KiB with its CRLF)")
        got = c.roundtrip(line, 65536 - 7 + 10)
        eq(got[:8], b"$65529\r\n", "an inline command of 64 KiB runs")
    finally:
        eq(srv.stop(), 0, "oversize server exits 0")


def maxclients():
    srv = Server("--maxclients", "3")
    time.sleep(0.3)  # the readiness probe's connection is gone
    try:
        cs = [srv.conn() for _ in range(3)]
        for c in cs:
            eq(c.roundtrip(cmd("PING"), 7), b"+PONG\r\n", "client within --maxclients 3 served")
        extra = srv.conn()
        got = extra.read_quiet(0.5)
        eq(got, b"-ERR max number of clients reached\r\n", "the 4th client is refused")
        check(extra.closed, "... and closed")
        cs[0].close()
        time.sleep(0.2)
        again = srv.conn()
        eq(again.roundtrip(cmd("PING"), 7), b"+PONG\r\n", "a freed slot is reused")
    finally:
        srv.stop()


def idle_10k():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 10000 + 200
    if soft < want:
        try:  # root may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard) if hard != resource.RLIM_INFINITY else hard))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    srv = Server()
    socks = []
    try:
        for i in range(10000):
            s = socket.socket()
            s.connect(("127.0.0.1", srv.port))
            socks.append(s)
        time.sleep(0.5)
        last = socks[-1]
        last.sendall(cmd("PING"))
        last.settimeout(10)
        eq(last.recv(100), b"+PONG\r\n", "the 10,000th idle connection is served")
        c = srv.conn()
        eq(c.read_quiet(0.5), b"-ERR max number of clients reached\r\n", "the 10,001st is refused")
        socks[0].sendall(cmd("INFO", "clients"))
        socks[0].settimeout(10)
        info = socks[0].recv(4096)
        check(b"connected_clients:10000\r\n" in info, "INFO: 10000 connected clients", info[:120])
        rss = srv.rss_kb()
        check(rss < 256 * 1024, "10,000 idle clients cost less than 256 MB", "%d KB" % rss)
        for s in socks:
            s.close()
        socks = []
        time.sleep(0.5)
        c = srv.conn()
        eq(c.roundtrip(cmd("SET", "after", "1") + cmd("GET", "after"), 12), b"+OK\r\n$1\r\n1\r\n",
           "served normally after the 10,000 close")
    finally:
        for s in socks:
            s.close()
        eq(srv.stop(), 0, "10k server exits 0")


def slow_reader():
    srv = Server("--output-limit", "1mb")
    try:
        c = srv.conn()
        big = b"b" * 100000
        c.send(cmd("SET", "big", big))
        c.read_until(5)
        rss0 = srv.rss_kb()
        under = srv.conn()
        under.send(cmd("GET", "big") * 5)  # 500 KB of replies, not read yet
        slow = srv.conn()
        slow.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(20):
            try:
                slow.send(cmd("GET", "big") * 100)  # 10 MB of replies per step
            except OSError:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        grew = srv.rss_kb() - rss0
        check(grew < 48 * 1024, "a slow reader does not grow the server past its output limit", "%d KB" % grew)
        check("closed for overcoming of output buffer limits" in srv.logtext(), "the slow reader was closed")
        slow.read_quiet(0.3, timeout=30)
        check(slow.closed, "... its connection is closed")
        want = (b"$100000\r\n" + big + b"\r\n") * 5
        eq(under.read_until(len(want), timeout=10) == want, True, "a reader under the limit gets every reply")
        c2 = srv.conn()
        eq(c2.roundtrip(cmd("PING"), 7), b"+PONG\r\n", "the server serves on")
    finally:
        eq(srv.stop(), 0, "slow-reader server exits 0")


def main():
    try:
        protected_mode()
        requirepass()
        oversize()
        maxclients()
        idle_10k()
        slow_reader()
    finally:
        cleanup()
    finish()


main()
