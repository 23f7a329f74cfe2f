#!/usr/bin/python3
"""test_durability.py: acknowledged writes survive SIGKILL.

calypsod runs under --sync always (and then under the default everysec)
while three clients write: one SET at a time, a pipeline of 100 SETs per
write, and MULTI/EXEC blocks of three SETs. The server is killed with
SIGKILL at a random moment (seeded); it is restarted on the same
directory, and every write whose reply had arrived before the kill must be
there with its value, and every acknowledged EXEC block whole. The block
that was in flight when the server died (sent, not acknowledged) is whole
or absent: EXEC commits a block as one engine batch. A fourth client works
in databases 3, 4 and 5: blocks that write two databases are whole or
absent, and a MOVE leaves its key in exactly one database. Power loss is tested
by the engine's own tests
(calypso_sync is what --sync always relies on); a SIGKILL loses only what
never reached the kernel.
"""
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cdtest import Server, check, eq, finish, cmd, cleanup, seed  # noqa: E402


class Writer(threading.Thread):
    def __init__(self, port, kind):
        super().__init__(daemon=True)
        self.port, self.kind = port, kind
        self.acked = {}      # key -> value, acknowledged
        self.blocks = []     # acknowledged EXEC blocks: [(key, value)...]
        self.sent = 0        # EXEC blocks sent (acknowledged or not)
        self.stop = False

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port))
            f = s.makefile("rb")
            i = 0
            while not self.stop:
                if self.kind == "single":
                    k, v = "s:%d" % i, "v%d" % i
                    s.sendall(cmd("SET", k, v))
                    if f.readline() != b"+OK\r\n":
                        return
                    self.acked[k] = v
                    i += 1
                elif self.kind == "pipeline":
                    batch = [("p:%d" % (i + j), "w%d" % (i + j)) for j in range(100)]
                    s.sendall(b"".join(cmd("SET", k, v) for k, v in batch))
                    for k, v in batch:
                        if f.readline() != b"+OK\r\n":
                            return
                        self.acked[k] = v
                    i += 100
                elif self.kind == "dbs":
                    self.run_dbs(s, f, i)
                    i += 1
                else:
                    block = [("m:%d:%s" % (i, x), "b%d%s" % (i, x)) for x in "abc"]
                    self.sent = i + 1
                    s.sendall(cmd("MULTI") + b"".join(cmd("SET", k, v) for k, v in block) + cmd("EXEC"))
                    want = [b"+OK\r\n"] + [b"+QUEUED\r\n"] * 3 + [b"*3\r\n"] + [b"+OK\r\n"] * 3
                    for w in want:
                        if f.readline() != w:
                            return
                    self.blocks.append(block)
                    i += 1
        except (OSError, EOFError):
            return

    def run_dbs(self, s, f, i):
        """Databases: a block that writes db 3 and db 4 (one engine batch
        across two namespaces), then a MOVE of its db-3 key to db 5."""
        if i == 0:
            s.sendall(cmd("SELECT", "3"))
            if f.readline() != b"+OK\r\n":
                raise EOFError
        self.sent = i + 1
        self.move_sent = 0
        s.sendall(cmd("MULTI") + cmd("SET", "x:%d:a" % i, "a%d" % i) + cmd("SELECT", "4") +
                  cmd("SET", "x:%d:b" % i, "b%d" % i) + cmd("SELECT", "3") + cmd("EXEC"))
        want = [b"+OK\r\n"] + [b"+QUEUED\r\n"] * 4 + [b"*4\r\n"] + [b"+OK\r\n"] * 4
        for w in want:
            if f.readline() != w:
                raise EOFError
        self.blocks.append(i)
        self.move_sent = 1
        s.sendall(cmd("MOVE", "x:%d:a" % i, "5"))
        if f.readline() != b":1\r\n":
            raise EOFError
        self.move_sent = 0
        self.acked[i] = True


def db_get(c, f, db, key):
    c.sendall(cmd("SELECT", str(db)) + cmd("GET", key))
    f.readline()
    ln = f.readline()
    return None if ln == b"$-1\r\n" else f.readline()[:-2].decode()


def check_dbs(c, f, w, mode):
    """After the restart: every acknowledged block and MOVE is there; the
    block in flight is whole or absent; the MOVE in flight left its key in
    exactly one of db 3 and db 5."""
    bad = 0
    for i in w.blocks:
        a3, a5, b4 = db_get(c, f, 3, "x:%d:a" % i), db_get(c, f, 5, "x:%d:a" % i), db_get(c, f, 4, "x:%d:b" % i)
        if b4 != "b%d" % i:
            bad += 1
        elif i in w.acked and (a3, a5) != (None, "a%d" % i):
            bad += 1
        elif i not in w.acked and sorted([a3 or "", a5 or ""]) != ["", "a%d" % i]:
            bad += 1
    eq(bad, 0, "%s: databases: acknowledged blocks across db 3 and 4 and MOVEs to db 5 all there; "
               "a MOVE in flight left its key in one database" % mode)
    if w.sent > len(w.blocks):
        i = w.sent - 1
        a3, b4 = db_get(c, f, 3, "x:%d:a" % i), db_get(c, f, 4, "x:%d:b" % i)
        check((a3, b4) in ((None, None), ("a%d" % i, "b%d" % i)),
              "%s: the two-database block in flight is whole or absent" % mode, (a3, b4))
    check(len(w.blocks) > 10, "%s: the databases writer got acknowledgements" % mode, len(w.blocks))


def crash_round(rnd, mode):
    srv = Server("--sync", mode)
    writers = [Writer(srv.port, k) for k in ("single", "pipeline", "multi", "dbs")]
    for w in writers:
        w.start()
    time.sleep(0.4 + rnd.random())
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    for w in writers:
        w.stop = True
        w.join(10)
    total = sum(len(w.acked) for w in writers[:3]) + sum(len(w.blocks) for w in writers[:3])
    check(total > 100, "%s: the writers got acknowledgements before the kill" % mode, total)
    srv2 = Server("--sync", mode, dbpath=srv.dbpath)
    try:
        c = socket.create_connection(("127.0.0.1", srv2.port))
        f = c.makefile("rb")
        missing = 0
        for w in writers[:3]:
            items = list(w.acked.items()) + [kv for b in w.blocks for kv in b]
            for j in range(0, len(items), 500):
                chunk = items[j:j + 500]
                c.sendall(cmd("MGET", *[k for k, _ in chunk]))
                head = f.readline()
                vals = []
                for _ in range(int(head[1:])):
                    ln = f.readline()
                    vals.append(None if ln == b"$-1\r\n" else f.readline()[:-2].decode())
                missing += sum(1 for (k, v), got in zip(chunk, vals) if got != v)
        eq(missing, 0, "%s: every acknowledged write is there after SIGKILL and restart" % mode)
        multi = writers[2]
        for i in range(len(multi.blocks), multi.sent):       # sent, never acknowledged
            keys = ["m:%d:%s" % (i, x) for x in "abc"]
            c.sendall(cmd("MGET", *keys))
            head = f.readline()
            present = 0
            for _ in range(int(head[1:])):
                ln = f.readline()
                if ln != b"$-1\r\n":
                    f.readline()
                    present += 1
            check(present in (0, 3), "%s: the EXEC block in flight at the kill is whole or absent" % mode,
                  present)
        check_dbs(c, f, writers[3], mode)
        c.close()
    finally:
        eq(srv2.stop(), 0, "%s: the restarted server exits 0" % mode)


def main():
    rnd = seed()
    try:
        for _ in range(2):
            crash_round(rnd, "always")
        crash_round(rnd, "everysec")
    finally:
        cleanup()
    finish()


main()
