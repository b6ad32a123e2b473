"""A throwaway PostgreSQL server for the DATABASE_URL tests, from the machine's own server binaries.

`python -m tests.helpers.postgres` prints the directory of those binaries, or fails: the Makefile installs
PostgreSQL when it fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from chain.processes import free_port

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def server_bindir() -> Path:
    """Where initdb, pg_ctl and postgres are, as `pg_config --bindir` says.

    Which pg_config to ask matters on Debian. Each server version's binaries live in
    /usr/lib/postgresql/<major>/bin, beside a pg_config of that version (postgresql-client-<major>, installed
    with the server) that names that directory. The `pg_config` on PATH is postgresql-common's wrapper, which
    hands over to the newest of those, or, without one, libpq-dev's: that one names the directory of the
    version libpq was built from, which need not be an installed server's (a newer libpq from another
    repository), and a build of libpq alone answers /usr/bin, where no server is. So the versioned ones are
    asked first, newest first, then the one on PATH (other systems: Homebrew, upstream builds); a directory
    counts only if it holds the server programs.
    """
    versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_config"), key=_major, reverse=True)
    on_path = shutil.which("pg_config")
    asked: list[str] = []
    for pg_config in [*versioned, *([on_path] if on_path else [])]:
        try:
            answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            continue
        bindir = Path(answer.stdout.strip())
        asked.append(f"{pg_config}: {bindir}")
        if all(os.access(bindir / program, os.X_OK) for program in SERVER_PROGRAMS):
            return bindir
    raise FileNotFoundError(
        "no PostgreSQL server binaries found (" + ("; ".join(asked) or "no pg_config") + "): install postgresql"
    )


def _major(pg_config: str) -> int:
    version = Path(pg_config).parent.parent.name
    return int(version) if version.isdigit() else 0


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.data = self.dir / "data"

    def _run(self, *args: str) -> None:
        # initdb and postgres refuse to run as root; run them as the postgres system user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        # -w: pg_ctl returns once the server accepts connections.
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -h 127.0.0.1",
            "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        print(server_bindir())
    except FileNotFoundError as exc:
        sys.exit(str(exc))
