"""Stops a test PostgreSQL server when the process that started it dies (however it dies).

`pg_ctl start` detaches the server into its own session, so a test run killed with SIGKILL (or a
crashed xdist worker) used to leave `postgres -D` servers running and their directories behind.
This watchdog is started, in a session of its own (so Ctrl-C and a process-group kill of the run
do not take it first), holding the read end of a pipe whose only write end stays in the parent.
When the parent exits for any reason the kernel closes that end, the read returns end-of-file and
the watchdog stops the server (`pg_ctl stop -m immediate`) and deletes its directory. A normal
`PostgresServer.stop()` closes the pipe itself, so the same path runs then too.

    python tests/pg_watchdog.py FD ROOT -- PG_CTL_COMMAND...
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main(argv: list[str]) -> int:
    fd, root, sep, *stop = argv
    if sep != "--" or not stop:
        print("usage: pg_watchdog.py FD ROOT -- PG_CTL_COMMAND...", file=sys.stderr)
        return 2
    try:
        while os.read(int(fd), 4096):  # nothing is ever written: this waits for end-of-file
            pass
    except OSError:
        pass
    try:
        subprocess.run(stop, capture_output=True, timeout=120, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
