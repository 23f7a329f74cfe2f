"""cluster_util.py: what the cluster tests share: N calypsod shards on free
loopback ports (tests/server/cdtest.py's Server) behind one nutcracker
(twemproxy) whose configuration is examples/cluster/nutcracker.yml.in,
filled in here as examples/cluster/cluster.sh fills it in; every process is
stopped by its pid.

Shard i (0-based) is named "shard<i+1>" in the proxy's configuration:
ketama hashes the names, so the placement of keys depends on the names and
the count, not on the ports the kernel picked.
"""
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
import cdtest  # noqa: E402
from cdtest import Server, free_port, ROOT  # noqa: E402,F401

import redis  # noqa: E402  (Debian's python3-redis)

TEMPLATE = os.path.join(ROOT, "examples", "cluster", "nutcracker.yml.in")
NUTCRACKER = os.environ.get("NUTCRACKER", "/usr/sbin/nutcracker")
BASE = cdtest._base


def render(listen, shards, auto_eject=False, auth=None):
    """The proxy's configuration: the template with the listen address,
    auto_eject_hosts and one server line per (port, name); redis_auth
    appended when auth is set."""
    with open(TEMPLATE) as f:
        text = f.read()
    servers = "\n".join("   - 127.0.0.1:%d:1 %s" % (port, name) for port, name in shards)
    text = (text.replace("@LISTEN@", listen)
                .replace("@AUTO_EJECT@", "true" if auto_eject else "false")
                .replace("@SERVERS@", servers))
    if auth:
        text += "  redis_auth: %s\n" % auth
    return text


class Proxy:
    """nutcracker in the foreground on a free port (and a free stats port);
    stop() sends SIGTERM to its pid."""

    def __init__(self, shards, auto_eject=False, auth=None, port=None):
        self.port = port or free_port()
        self.stats_port = free_port()
        self.auth = auth
        self.conf = os.path.join(BASE, "nutcracker-%d.yml" % self.port)
        with open(self.conf, "w") as f:
            f.write(render("127.0.0.1:%d" % self.port, shards, auto_eject, auth))
        self.logpath = os.path.join(BASE, "nutcracker-%d.log" % self.port)
        self.proc = subprocess.Popen([NUTCRACKER, "-c", self.conf, "-o", self.logpath,
                                      "-s", str(self.stats_port), "-a", "127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self, timeout=10):
        """Until the proxy answers PING (after AUTH when it has a password)."""
        end = time.time() + timeout
        hello = (cdtest.cmd("AUTH", self.auth) if self.auth else b"") + cdtest.cmd("PING")
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("nutcracker exited with %s: %s" % (self.proc.returncode, self.logtext()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
                s.sendall(hello)
                got = b""
                while not got.endswith(b"+PONG\r\n") and len(got) < 64:
                    d = s.recv(64)
                    if not d:
                        break
                    got += d
                s.close()
                if got.endswith(b"+PONG\r\n"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("nutcracker did not answer on %d: %s" % (self.port, self.logtext()))

    def logtext(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")[-2000:]
        except OSError:
            return ""

    def client(self, **kw):
        return redis.Redis(port=self.port, password=self.auth, socket_timeout=10, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """nshards calypsod shards (each with its own database and `--sync
    always` unless shard_args says otherwise) and a proxy in front."""

    def __init__(self, nshards=3, auth=None, auto_eject=False, shard_args=("--sync", "always")):
        self.auth = auth
        self.shard_args = list(shard_args) + (["--requirepass", auth] if auth else [])
        self.shards = [Server(*self.shard_args) for _ in range(nshards)]
        self.names = ["shard%d" % (i + 1) for i in range(nshards)]
        self.auto_eject = auto_eject
        self.proxy = Proxy(self.layout(), auto_eject, auth)

    def layout(self):
        return [(s.port, n) for s, n in zip(self.shards, self.names)]

    def add_shard(self):
        """Starts one more shard; the proxy is not told (restart_proxy)."""
        self.shards.append(Server(*self.shard_args))
        self.names.append("shard%d" % len(self.shards))
        return len(self.shards) - 1

    def restart_proxy(self):
        self.proxy.stop()
        self.proxy = Proxy(self.layout(), self.auto_eject, self.auth)

    def client(self, **kw):
        return self.proxy.client(**kw)

    def direct(self, i):
        """A client of shard i itself, not through the proxy."""
        return redis.Redis(port=self.shards[i].port, password=self.auth, socket_timeout=10)

    def owners(self, key):
        """The shards (indexes) that hold key, asked directly."""
        return [i for i in range(len(self.shards)) if self.direct(i).exists(key)]

    def kill_shard(self, i, sig=signal.SIGKILL):
        s = self.shards[i]
        s.proc.send_signal(sig)
        s.proc.wait()
        s.log.close()

    def restart_shard(self, i):
        """The shard again, on its port and its database."""
        old = self.shards[i]
        self.shards[i] = Server(*self.shard_args, dbpath=old.dbpath, port=old.port)

    def stop(self):
        self.proxy.stop()
        for s in self.shards:
            s.stop()
