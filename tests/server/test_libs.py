#!/usr/bin/python3
"""test_libs.py: the client libraries that are not Python: hiredis from C
(hiredis_client.c, built by `make` as $HIREDIS_CLIENT) and the npm
packages ioredis and redis under node (node/test_clients.js, installed by
`make calypsod-deps` into tests/server/node/node_modules). Each prints its
own "N passed, N failed"; this script adds them up.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import cdtest  # noqa: E402
from cdtest import Server, check, eq, finish, cleanup, ROOT  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run_counted(name, argv, cwd=None):
    p = subprocess.run(argv, capture_output=True, timeout=120, cwd=cwd)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    m = re.findall(r"^(\d+) passed, (\d+) failed$", out, re.M)
    if not check(bool(m), name + " printed its count", out[-2000:]):
        return
    np, nf = map(int, m[-1])
    cdtest.passed += np
    cdtest.failed += nf
    if nf or p.returncode:
        print(out)
    eq(p.returncode, 0 if nf == 0 else p.returncode, name + " exit status")


def main():
    srv = Server()
    srv_pw = Server("--requirepass", "pw")
    try:
        client = os.environ.get("HIREDIS_CLIENT", os.path.join(ROOT, "build", "hiredis_client"))
        run_counted("hiredis", [client, str(srv.port)])
        run_counted("node ioredis/redis", ["node", "test_clients.js", str(srv.port), str(srv_pw.port)],
                    cwd=os.path.join(HERE, "node"))
    finally:
        eq(srv.stop(), 0, "calypsod exits 0")
        eq(srv_pw.stop(), 0, "calypsod (requirepass) exits 0")
        cleanup()
    finish()


main()
