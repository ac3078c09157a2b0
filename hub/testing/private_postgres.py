"""A private PostgreSQL cluster a test may stop and start (never the shared server on 5432).

Made with the machine's own ``initdb``/``pg_ctl`` (``/usr/lib/postgresql/*/bin``) in a temporary directory,
listening on a free loopback port with trust authentication; as root the commands run as the ``postgres``
user (initdb refuses root).  Missing binaries skip the test (fail under HUB_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .ports import free_port
from .services import unavailable


class PrivatePostgres:
    """``start()`` once, then ``stop()``/``resume()`` as the test needs; ``close()`` removes everything."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            unavailable("PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[-1]).parent
        # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self._root = Path(tempfile.mkdtemp(prefix="hub-private-pg-"))
        self._root.chmod(0o755)
        self.dir = self._root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://hub@127.0.0.1:{self.port}/postgres"
        self._user = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no postgres user to run initdb as")

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> PrivatePostgres:
        self.dir.mkdir(parents=True)
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.dir), "-A", "trust", "-U", "hub", "--no-sync", "-E", "UTF8")
        self.resume()
        return self

    def resume(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        if (self.dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._root, ignore_errors=True)
