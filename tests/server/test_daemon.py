#!/usr/bin/python3
"""test_daemon.py: calypsod as a process: its command line (--help,
--version, bad options, --dbpath required), a second server on the same
directory refused with the holder's pid, SIGHUP reopening --logfile,
SIGINT and SHUTDOWN closing cleanly with the data kept, the file
descriptor limit (raised, lowered with advice, or too low to start),
SAVE/BGSAVE/BGREWRITEAOF/LASTSAVE, and a full disk (a tmpfs of its own).
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import BIN, Server, check, eq, finish, cmd, cleanup, free_port, _base  # noqa: E402


def command_line():
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    check(p.returncode == 0 and "--dbpath DIR" in p.stdout and "--sync MODE" in p.stdout, "--help", p.stdout[:200])
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    check(p.returncode == 0 and p.stdout.startswith("calypsod 0.1.0 (calypso "), "--version", p.stdout)
    p = subprocess.run([BIN, "--bind", "127.0.0.1:1"], capture_output=True, text=True)
    eq((p.returncode, p.stderr), (2, "calypsod: --dbpath DIR is required (the database directory)\n"),
       "--dbpath is required")
    for bad, msg in ((["--sync", "sometimes"], "--sync wants always, everysec or no"),
                     (["--bind", "nohostport"], "--bind wants [HOST]:PORT"),
                     (["--bind", ":70000"], "bad port in --bind"),
                     (["--maxclients", "0"], "--maxclients wants a number from 1 to 1000000"),
                     (["--databases", "0"], "--databases wants a number from 1 to 1000000"),
                     (["--databases", "1000001"], "--databases wants a number from 1 to 1000000"),
                     (["--output-limit", "lots"], "--output-limit wants a size"),
                     (["--nosuch"], "unrecognized option")):
        p = subprocess.run([BIN, "--dbpath", os.path.join(_base, "never")] + bad, capture_output=True, text=True)
        check(p.returncode == 2 and msg in p.stderr, "refused: %s" % " ".join(bad), p.stderr)
    check(not os.path.exists(os.path.join(_base, "never")), "a refused command line creates nothing")


def locked():
    a = Server()
    try:
        port = free_port()
        p = subprocess.run([BIN, "--bind", "127.0.0.1:%d" % port, "--dbpath", a.dbpath],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 1 and "database locked by another process" in p.stderr and
              str(a.proc.pid) in p.stderr, "a second server on the same directory is refused, naming the pid",
              p.stderr[-300:])
    finally:
        a.stop()


def logfile_and_signals():
    log = os.path.join(_base, "reopen.log")
    srv = Server("--logfile", log)
    try:
        c = srv.conn()
        eq(c.roundtrip(cmd("SET", "kept", "yes"), 5), b"+OK\r\n", "SET before the signals")
        os.rename(log, log + ".1")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        check(os.path.exists(log), "SIGHUP reopens --logfile (a new file after logrotate moved it)")
        with open(log) as f:
            check("log reopened" in f.read(), "the new log says so")
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(20)
        eq(srv.proc.returncode, 0, "SIGINT: clean exit")
        with open(log) as f:
            text = f.read()
        check("Received SIGINT scheduling shutdown" in text and "bye bye" in text, "SIGINT is logged", text[-300:])
    finally:
        srv.stop()
    srv2 = Server(dbpath=srv.dbpath)
    try:
        c = srv2.conn()
        eq(c.roundtrip(cmd("GET", "kept"), 9), b"$3\r\nyes\r\n", "the data is there after a restart")
        eq(c.roundtrip(cmd("SAVE") + cmd("BGSAVE"), 32), b"+OK\r\n+Background saving started\r\n", "SAVE, BGSAVE")
        c.send(cmd("LASTSAVE"))
        ts = int(c.read_until(13)[1:-2])
        check(abs(ts - time.time()) < 5, "LASTSAVE is the last SAVE", ts)
        want = b"+Background append only file rewriting started\r\n"
        eq(c.roundtrip(cmd("BGREWRITEAOF"), len(want)), want,
           "BGREWRITEAOF starts a merge")
        time.sleep(0.5)
        eq(c.roundtrip(cmd("GET", "kept"), 9), b"$3\r\nyes\r\n", "the data is there after the merge")
        c.send(cmd("SHUTDOWN"))
        c.read_quiet(0.5)
        check(c.closed, "SHUTDOWN closes the connection without a reply")
        srv2.proc.wait(20)
        eq(srv2.proc.returncode, 0, "SHUTDOWN: clean exit")
    finally:
        srv2.stop()


def fd_limit():
    port = free_port()
    d = os.path.join(_base, "fdlimit")
    p = subprocess.Popen(["prlimit", "--nofile=300:300", BIN, "--bind", "127.0.0.1:%d" % port,
                          "--dbpath", d, "--maxclients", "10000"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    check("maxclients has been reduced to 204" in err and "increase 'ulimit -n'" in err,
          "a low hard limit: maxclients lowered, with the advice", err[-400:])
    eq(p.returncode, 0, "... and the server ran")
    p = subprocess.run(["prlimit", "--nofile=50:50", BIN, "--bind", "127.0.0.1:%d" % port,
                        "--dbpath", d], capture_output=True, text=True, timeout=20)
    check(p.returncode == 1 and "Please increase 'ulimit -n'" in p.stderr, "too low to start: says what to do",
          p.stderr[-300:])


def disk_full():
    """calypsod on a 48 MiB file system of its own (tmpfs in a private mount
    namespace, gone with the process): SETs until the disk is full get
    Redis's MISCONF error, reads and DEL go on, BGREWRITEAOF (a merge) gives
    the space back and SET works again."""
    d = os.path.join(_base, "small-disk")
    os.makedirs(d, exist_ok=True)
    wrap = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=48m tmpfs "$0" && exec "$@"', d]
    srv = Server("--sync", "always", dbpath=d, wrap=wrap)
    try:
        c = srv.conn()
        val = b"x" * (256 << 10)
        stored, reply = 0, b""
        for i in range(400):
            reply = c.roundtrip(cmd("SET", "big%03d" % i, val), 5)
            if reply != b"+OK\r\n":
                break
            stored += 1
        eq(reply, b"-MISCONF Errors writing to the AOF file: No space left on device\r\n",
           "a SET on a full disk: Redis's MISCONF error")
        check(0 < stored < 200, "the disk filled after %d SETs of 256 KiB" % stored)
        got = c.roundtrip(cmd("GET", "big000"), len(val) + 16)
        check(got == b"$%d\r\n%s\r\n" % (len(val), val), "reads go on on a full disk")
        eq(c.roundtrip(cmd("DBSIZE"), 5), b":%d\r\n" % stored, "nothing acknowledged was lost")
        dels = b"".join(c.roundtrip(cmd("DEL", "big%03d" % i), 4) for i in range(stored))
        eq(dels, b":1\r\n" * stored, "DEL works on a full disk (the space reserve)")
        want = b"+Background append only file rewriting started\r\n"
        eq(c.roundtrip(cmd("BGREWRITEAOF"), len(want)), want, "BGREWRITEAOF on a full disk")
        ok = b""
        for _ in range(50):
            ok = c.roundtrip(cmd("SET", "after", "merge"), 5)
            if ok == b"+OK\r\n":
                break
            time.sleep(0.1)
        eq(ok, b"+OK\r\n", "after BGREWRITEAOF (a merge) the space is back: SET works")
        c.close()
    finally:
        rc = srv.stop()
    eq(rc, 0, "calypsod on a full disk still exits 0 on SIGTERM")


def main():
    try:
        command_line()
        locked()
        logfile_and_signals()
        fd_limit()
        disk_full()
    finally:
        cleanup()
    finish()


main()
