"""cdtest.py: what the calypsod client tests share: starting calypsod on a
free loopback port with a database of its own, stopping it by pid, raw
RESP connections, and the pass/fail count each test script prints as its
closing line ("N passed, N failed").

The binary is $CALYPSOD (default build/calypsod); databases go under
$CALYPSOD_TEST_DIR (default a fresh temporary directory).
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CALYPSOD", os.path.join(ROOT, "build", "calypsod"))
_base = os.environ.get("CALYPSOD_TEST_DIR") or tempfile.mkdtemp(prefix="calypsod-test-")
os.makedirs(_base, exist_ok=True)

passed = 0
failed = 0


def check(cond, what, detail=""):
    """Counts one check; prints the failures (and detail) as they happen."""
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, (" -- " + str(detail)) if detail != "" else ""), flush=True)
    return cond


def eq(got, want, what):
    return check(got == want, what, "got %r, want %r" % (got, want))


def finish():
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def free_port():
    """A loopback port nobody listens on now (the kernel's pick)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """calypsod on a free port; stop() sends SIGTERM to its pid."""

    def __init__(self, *args, dbpath=None, bind_host="127.0.0.1", port=None, wait=True, wrap=()):
        self.port = port or free_port()
        self.dbpath = dbpath or tempfile.mkdtemp(prefix="db-", dir=_base)
        self.log = open(os.path.join(_base, "calypsod-%d.log" % self.port), "ab")
        # wrap: a command that execs the rest (the same pid), e.g. unshare
        self.args = list(wrap) + [BIN, "--bind", "%s:%d" % (bind_host, self.port), "--dbpath",
                                  self.dbpath] + list(args)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("calypsod exited with %s: %s" % (self.proc.returncode, self.logtext()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("calypsod did not listen on %d" % self.port)

    def logtext(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def conn(self, **kw):
        return Conn(self.port, **kw)


def cmd(*args):
    """The RESP multibulk encoding of a command."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """A raw socket to the server: send bytes, read exactly the bytes of
    the replies that arrive within a short quiet period."""

    def __init__(self, port, source=None, timeout=5):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.s.bind((source, 0))
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.closed = False

    def send(self, data):
        self.s.sendall(data)

    def read_until(self, want, timeout=5):
        """Reads until `want` bytes arrived (or close/timeout); returns them."""
        out = b""
        end = time.time() + timeout
        while len(out) < want and time.time() < end:
            self.s.settimeout(max(0.01, end - time.time()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                break
            if not d:
                self.closed = True
                break
            out += d
        return out

    def read_quiet(self, quiet=0.2, timeout=5):
        """Reads until nothing more arrives for `quiet` seconds."""
        out = b""
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(quiet)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                self.closed = True
                break
            if not d:
                self.closed = True
                break
            out += d
        return out

    def roundtrip(self, data, want_len):
        self.send(data)
        return self.read_until(want_len)

    def close(self):
        self.s.close()


def seed():
    """The seed of a randomized test: $CALYPSO_SEED, else a fresh one."""
    s = int(os.environ.get("CALYPSO_SEED") or random.randrange(1, 2**31))
    print("seed %d (CALYPSO_SEED=%d replays)" % (s, s), flush=True)
    return random.Random(s)


def cleanup():
    if not os.environ.get("CALYPSOD_TEST_DIR"):
        shutil.rmtree(_base, ignore_errors=True)
