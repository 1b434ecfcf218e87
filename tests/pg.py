"""A private PostgreSQL cluster for tests and the bench: `initdb` in a temporary directory,
`pg_ctl start` listening only on 127.0.0.1 at a free port (its unix socket in that directory),
run as the `postgres` system user when we are root, stopped by its pid at the end.

Under CI=true missing binaries fail loudly; elsewhere the tests needing the cluster skip,
saying why.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
_names = itertools.count(1)


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(candidates[-1]).parent if candidates else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A running private cluster; `database()` gives the URL of a new, empty database."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir, self.root = bin_dir, root
        self.data = root / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.pid: int | None = None

    def _run(self, *argv: str) -> None:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=START_TIMEOUT_S)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=on -c max_connections=100"
        )
        log = self.root / "postgres.log"
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(log), "-o", options)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """Create a fresh database and return its URL."""
        import psycopg

        name = f"corral_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.pid is None:
            return
        with suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """Start a cluster for the length of the block; RuntimeError when PostgreSQL is missing."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb on PATH or under /usr/lib)")
    with tempfile.TemporaryDirectory(prefix="corral-pg-") as root:
        cluster = Cluster(bin_dir, Path(root))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """The session's private cluster (tests/conftest.py exposes it)."""
    if binaries() is None:
        message = "PostgreSQL is not installed (initdb not found; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with private_cluster() as cluster:
        yield cluster
