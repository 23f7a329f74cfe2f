#!/usr/bin/python3
"""test_redis_cli.py: calypsod through Debian's redis-cli and
redis-benchmark (7.0.15), unchanged:

- CalypsoDB's README transcript (PING, SET, GET, KEYS with no pattern,
  EXISTS, DEL), byte for byte, one-shot and interactive (under tmux, since
  linenoise needs a terminal);
- --scan --pattern, --pipe with 100,000 commands, -3 (RESP3), -x (value
  from stdin), -r (repeat), -n (SELECT), -a (AUTH);
- redis-benchmark -t ping,set,get,incr,mset, at -P 1 and -P 16: short
  runs that must finish without an error from the server.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import Server, check, eq, finish, cleanup  # noqa: E402


def cli(srv, *args, stdin=None):
    p = subprocess.run(["redis-cli", "-p", str(srv.port)] + list(args), input=stdin,
                       capture_output=True, timeout=120)
    return p.stdout, p.stderr, p.returncode


TRANSCRIPT = [
    (["PING"], b"PONG\n"),
    (["SET", "user:1", "Alice"], b"OK\n"),
    (["GET", "user:1"], b'"Alice"\n'),
    (["KEYS"], b'1) "user:1"\n'),
    (["EXISTS", "user:1"], b"(integer) 1\n"),
    (["DEL", "user:1"], b"(integer) 1\n"),
]


def transcript_oneshot(srv):
    for args, want in TRANSCRIPT:
        out, err, rc = cli(srv, "--no-raw", *args)
        eq(out, want, "redis-cli %s" % " ".join(args))
        eq(rc, 0, "redis-cli %s exit status" % " ".join(args))


def tmux(*args):
    return subprocess.run(["tmux"] + list(args), capture_output=True, timeout=30)


def transcript_interactive(srv):
    session = "calypsod-test-%d" % os.getpid()
    env_cmd = "TERM=xterm redis-cli -p %d" % srv.port
    tmux("kill-session", "-t", session)
    r = tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", session, env_cmd)
    if not check(r.returncode == 0, "tmux starts redis-cli", r.stderr):
        return
    try:
        prompt = "127.0.0.1:%d> " % srv.port
        end = time.time() + 10
        while time.time() < end:  # keys typed before the prompt would be lost
            if prompt.rstrip() in tmux("capture-pane", "-p", "-t", session).stdout.decode():
                break
            time.sleep(0.1)
        lines = []
        for args, want in TRANSCRIPT:
            line = " ".join('"%s"' % a if a == "Alice" else a for a in args)
            tmux("send-keys", "-t", session, "-l", line)
            tmux("send-keys", "-t", session, "Enter")
            lines.append(prompt + line)
            lines += want.decode().rstrip("\n").split("\n")
            time.sleep(0.3)
        tmux("send-keys", "-t", session, "-l", "SELECT 0")
        tmux("send-keys", "-t", session, "Enter")
        lines += [prompt + "SELECT 0", "OK"]
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "-l", "SELECT 3")
        tmux("send-keys", "-t", session, "Enter")
        lines += [prompt + "SELECT 3", "OK"]
        prompt = "127.0.0.1:%d[3]> " % srv.port   # redis-cli shows the database
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "-l", "FOO bar")
        tmux("send-keys", "-t", session, "Enter")
        lines += [prompt + "FOO bar", "(error) ERR unknown command 'FOO', with args beginning with: 'bar' "]
        end = time.time() + 10
        screen = []
        while time.time() < end:
            time.sleep(0.3)
            cap = tmux("capture-pane", "-p", "-t", session).stdout.decode()
            screen = [l.rstrip() for l in cap.split("\n") if l.strip()]
            if len(screen) >= len(lines) + 1:
                break
        want = [l.rstrip() for l in lines] + [prompt.rstrip()]
        eq(screen, want, "interactive redis-cli session under tmux")
    finally:
        tmux("kill-session", "-t", session)


def scan_pattern(srv):
    cli(srv, "FLUSHALL")
    keys = ["a:%d" % i for i in range(250)] + ["b:%d" % i for i in range(100)]
    cmds = "".join("SET %s v\n" % k for k in keys).encode()
    cli(srv, stdin=cmds)
    out, _, rc = cli(srv, "--scan", "--pattern", "a:*")
    got = out.decode().split()
    eq(sorted(got), sorted(k for k in keys if k.startswith("a:")), "--scan --pattern a:* lists the a: keys")
    eq(len(got), len(set(got)), "--scan lists each key once")
    out, _, rc = cli(srv, "--scan")
    eq(len(out.split()), 350, "--scan lists every key")


def pipe_mode(srv):
    cli(srv, "FLUSHALL")
    n = 100000
    parts = []
    for i in range(n):
        k = b"pipe:%d" % i
        v = b"value-%d" % i
        parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
    out, err, rc = cli(srv, "--pipe", stdin=b"".join(parts))
    check(b"errors: 0, replies: 100000" in out, "--pipe with 100,000 SETs: no errors", out + err)
    eq(rc, 0, "--pipe exit status")
    out, _, _ = cli(srv, "DBSIZE")
    eq(out, b"100000\n", "DBSIZE after --pipe")
    out, _, _ = cli(srv, "GET", "pipe:99999")
    eq(out, b"value-99999\n", "the last piped key")


def options(srv):
    cli(srv, "FLUSHALL")
    out, _, _ = cli(srv, "-3", "--no-raw", "CONFIG", "GET", "save")
    eq(out, b'1# "save" => ""\n', "-3: CONFIG GET answers a RESP3 map")
    out, _, _ = cli(srv, "-3", "--no-raw", "GET", "missing")
    eq(out, b"(nil)\n", "-3: a RESP3 null")
    out, _, _ = cli(srv, "-3", "--no-raw", "HELLO", "3")
    check(out.startswith(b'1# "server" => "redis"\n2# "version" => "7.0.15"\n3# "proto" => (integer) 3\n'),
          "-3: HELLO 3 map", out)
    val = bytes(random.Random(1).randrange(1, 256) for _ in range(5000)).replace(b"\n", b"x")
    out, _, rc = cli(srv, "-x", "SET", "fromstdin", stdin=val)
    eq(out, b"OK\n", "-x SET")
    out, _, _ = cli(srv, "--raw", "GET", "fromstdin")
    eq(out, val + b"\n", "-x: the value is stdin's bytes")
    out, _, _ = cli(srv, "-r", "4", "INCR", "ctr")
    eq(out, b"1\n2\n3\n4\n", "-r 4 INCR")
    out, err, rc = cli(srv, "-n", "0", "PING")
    eq((out, rc), (b"PONG\n", 0), "-n 0")
    out, err, rc = cli(srv, "-n", "99", "PING")
    eq(err, b"SELECT 99 failed: ERR DB index is out of range\n", "-n 99: redis-cli's message")
    out, err, rc = cli(srv, "-n", "2", "SET", "dbkey", "two")
    eq((out, rc), (b"OK\n", 0), "-n 2 SET")
    out, _, _ = cli(srv, "-n", "2", "GET", "dbkey")
    eq(out, b"two\n", "-n 2 GET: db 2's key")
    out, _, _ = cli(srv, "GET", "dbkey")
    eq(out, b"\n", "without -n: db 0 has no such key")
    out, _, _ = cli(srv, "-n", "2", "--scan", "--pattern", "db*")
    eq(out, b"dbkey\n", "-n 2 --scan: db 2's keys")
    out, _, _ = cli(srv, "-n", "2", "DBSIZE")
    eq(out, b"1\n", "-n 2 DBSIZE")


def benchmark(srv):
    for pipeline in ("1", "16"):
        p = subprocess.run(["redis-benchmark", "-p", str(srv.port), "-t", "ping,set,get,incr,mset",
                            "-n", "5000", "-c", "10", "-r", "1000", "-P", pipeline, "-q"],
                           capture_output=True, timeout=120)
        out = p.stdout.decode(errors="replace")
        check(p.returncode == 0 and "Error" not in out and "ERR" not in out,
              "redis-benchmark -P %s: no error" % pipeline, out[-500:])
        done = [l for l in out.replace("\r", "\n").split("\n") if "requests per second" in l and ":" in l]
        names = sorted(set(l.split(":")[0].strip() for l in done))
        eq(names, sorted(["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]),
           "redis-benchmark -P %s: every test ran" % pipeline)


def auth(srv_pw):
    out, err, _ = subprocess.run(["redis-cli", "-p", str(srv_pw.port), "-a", "s3cret", "--no-auth-warning",
                                  "SET", "k", "v"], capture_output=True).stdout, None, None
    eq(out, b"OK\n", "-a PASSWORD")
    out = subprocess.run(["redis-cli", "-p", str(srv_pw.port), "--user", "default", "--pass", "s3cret",
                          "--no-auth-warning", "GET", "k"], capture_output=True).stdout
    eq(out, b"v\n", "--user default --pass PASSWORD")
    out = subprocess.run(["redis-cli", "-p", str(srv_pw.port), "GET", "k"], capture_output=True).stdout
    # redis-cli prints an error reply and a blank line (as with redis-server)
    eq(out, b"NOAUTH Authentication required.\n\n", "no password: NOAUTH")


def main():
    srv = Server()
    srv_pw = Server("--requirepass", "s3cret")
    try:
        transcript_oneshot(srv)
        transcript_interactive(srv)
        scan_pattern(srv)
        pipe_mode(srv)
        options(srv)
        benchmark(srv)
        auth(srv_pw)
    finally:
        eq(srv.stop(), 0, "calypsod exits 0")
        eq(srv_pw.stop(), 0, "calypsod (requirepass) exits 0")
        cleanup()
    finish()


main()
