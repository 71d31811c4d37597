"""Real services for integration tests (issue 6): a fresh PostgreSQL schema per test run, private
Mosquitto brokers and a private PostgreSQL cluster that a test may stop and start.

Every helper skips with the reason when the service is not configured (`source .ci/services.sh`
exports WARDSIGHT_PG_URL, WARDSIGHT_MQTT_URL and WARDSIGHT_MOSQUITTO_BIN)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parent.parent


def pg_base_url() -> str:
    url = os.environ.get("WARDSIGHT_PG_URL", "")
    if not url:
        pytest.skip("WARDSIGHT_PG_URL is unset: run `source .ci/services.sh` for the PostgreSQL tests")
    return url


def mqtt_url() -> str:
    url = os.environ.get("WARDSIGHT_MQTT_URL", "")
    if not url:
        pytest.skip("WARDSIGHT_MQTT_URL is unset: run `source .ci/services.sh` for the MQTT tests")
    return url


def mosquitto_bin() -> str:
    path = os.environ.get("WARDSIGHT_MOSQUITTO_BIN", "")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("WARDSIGHT_MOSQUITTO_BIN is unset: the broker-restart and database-outage tests start their own mosquitto")
    return path


def with_search_path(base_url: str, schema: str) -> str:
    """The URL of `base_url` with every connection's search_path set to `schema` (psycopg option)."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_pg_schema(base_url: str):
    """A new, empty schema on the test database; dropped afterwards. Yields the URL that uses it."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield with_search_path(base_url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, up: bool = True, timeout_s: float = 15.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout_s} s")


class PrivateBroker:
    """A mosquitto on its own loopback port with persistence in a temp dir: queued QoS 1 messages of
    persistent sessions survive `restart()`."""

    def __init__(self, binary: str, max_queued: int = 100_000):
        self.binary = binary
        # mosquitto started as root drops to its own user: its files live in a dir that user can reach
        self.dir = Path(tempfile.mkdtemp(prefix="wardsight-mq-"))
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"persistence true\npersistence_location {self.dir}/\nautosave_interval 1\n"
                             f"max_queued_messages {max_queued}\nlog_dest file {self.dir}/mosquitto.log\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "PrivateBroker":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()               # SIGTERM: mosquitto writes its persistence file
            self.proc.wait(10)
        wait_port(self.port, up=False)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


def pg_bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    env = os.environ.get("WARDSIGHT_PG_BIN", "")
    path = Path(env) if env else (Path(found[-1]).parent if found else None)
    if path is None or not (path / "pg_ctl").exists():
        pytest.skip("no PostgreSQL server binaries (pg_ctl): the database-outage test runs its own cluster")
    return path


class PrivateCluster:
    """A throw-away PostgreSQL cluster on its own port that a test can stop (a real outage) and start."""

    def __init__(self, bindir: Path):
        self.bindir, self.port = bindir, free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="wardsight-pg-"))
        workdir = self.dir
        self.data = workdir / "data"
        self.as_postgres = os.geteuid() == 0   # the server refuses to run as root
        if self.as_postgres:
            shutil.chown(workdir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "wardsight", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{workdir}'\n"
                     "fsync = off\n")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://wardsight@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.dir, text=True)
        if done.returncode:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout[-800:]}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass                                  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)
