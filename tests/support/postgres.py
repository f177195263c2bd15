"""A real PostgreSQL server for the tests: its own cluster in a temp dir, on a unix socket only.

One server per test session (initdb ~1 s, start ~0.3 s); each test gets a database of its
own (`fresh_database`), so tests never see each other's rows. As root the cluster belongs to
the `postgres` user (initdb refuses root), run through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

INSTALL = "apt-get install postgresql (scripts/setup.sh does)"


def server_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (initdb, pg_ctl), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]), reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


class PgServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="factory-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else os.environ.get("USER", "postgres")

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> PgServer:
        self.socket_dir.mkdir(parents=True)
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self.root.chmod(0o755)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as fh:  # small, fast, private: no TCP, no fsync (a test cluster)
            fh.write(
                f"listen_addresses = ''\nunix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n"
                "max_connections = 100\n"
            )
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", action, *extra)

    def restart(self) -> None:
        """A restart as an operator does one: every connection is cut."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: every connection cut, what was committed kept)."""
        with contextlib.suppress(Exception):
            self._pg_ctl("stop", "-m", mode)

    def start_again(self) -> None:
        self._pg_ctl("start")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def password_role(self, role: str, password: str) -> None:
        """A login role that must give its password (scram-sha-256), as the factory's is on a gate."""
        hba = self.data / "pg_hba.conf"
        line = f"local all {role} scram-sha-256\n"
        if line not in hba.read_text():
            hba.write_text(line + hba.read_text())  # the first matching line wins
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        self._pg_ctl("reload")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}"

    def fresh_database(self) -> str:
        """A new empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
