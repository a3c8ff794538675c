"""The deployment of docs/deploy.md on loopback, from Debian packages and no containers.

nginx in front of two or three ``python -m server`` nodes, each on its own port, sharing one
PostgreSQL (the case record), one Redis with an append-only file (rooms and socket.io fan-out),
one audit signing key and one data directory (sealed records). Usage::

    with Topology(tmp_path, nodes=2) as topology:
        topology.url                      # nginx: what clients use
        topology.kill(topology.nodes[0])  # SIGKILL
        topology.restart(topology.nodes[0])
        topology.restart_redis(); topology.restart_postgres()

Like ``tests/services.py`` the API is synchronous; async tests call the slow parts through
``asyncio.to_thread`` so their clients keep running. ``stop()`` always tears everything down.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.services import NginxServer, PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
ADMIN, ADMIN_PASSWORD = "admin", "an administrator's long password"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclasses.dataclass
class Node:
    """One server process; its port and environment outlive restarts."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"node {self.name} is not running")
        return self.proc.pid

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"node {self.name} exited with {code}; log tail:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.name} not ready within {START_TIMEOUT:g} s; log tail:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL past the timeout."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group(proc, signal.SIGKILL)
            proc.wait()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the node and its children (recorder workers), and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self._kill_group(proc, sig)
        proc.wait(timeout=STOP_TIMEOUT)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def tail(self, max_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-max_chars:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the node process so far (/proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        """Resident memory of the node process (/proc/<pid>/status VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for node {self.name}")


class Topology:
    """nginx, ``nodes`` server processes, PostgreSQL and Redis, on 127.0.0.1 and free ports.

    ``settings`` adds or overrides ``MEDIATION_*`` variables of every node; ``command`` replaces
    ``python -m server`` (benchmarks wrap it).
    """

    def __init__(self, workdir: Path, *, nodes: int = 2, settings: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        if nodes < 1:
            raise ValueError("a topology needs at least one node")
        self.workdir = workdir
        self.count = nodes
        self.settings = dict(settings or {})
        self.command = command or [PYTHON, "-m", "server"]
        self.redis = RedisServer(appendonly=True)
        self.postgres = PostgresServer(settings={"max_connections": "200"})
        self.nginx: NginxServer | None = None
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        if self.nginx is None:
            raise RuntimeError("the topology is not started")
        return self.nginx.url

    def start(self) -> Topology:
        atexit.register(self.stop)  # node processes outlive a test run that dies; services have theirs
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.redis.start()
        self.postgres.start()
        ports = [free_port() for _ in range(self.count)]
        self.nginx = NginxServer(ports).start()
        shared = self.workdir / "shared"  # stands for the shared volume of docs/deploy.md
        secrets_dir = self.workdir / "secrets"
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
        env.update({
            "MEDIATION_HOST": "127.0.0.1",
            "MEDIATION_DATABASE_URL": self.postgres.dsn,
            "MEDIATION_REDIS_URL": self.redis.url,
            "MEDIATION_DATA_DIR": str(shared),
            "MEDIATION_AUDIT_KEY_FILE": str(secrets_dir / "audit-signing.key"),
            "MEDIATION_PUBLIC_URL": self.nginx.url,
            "MEDIATION_TRUSTED_PROXIES": "127.0.0.1",
            # Every test client comes through nginx from 127.0.0.1: one address for all.
            "MEDIATION_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
            "MEDIATION_APPLICATIONS_PER_MINUTE": "100000",
            "MEDIATION_PASSWORD_MEMORY_KIB": "1024",
            "MEDIATION_PASSWORD_TIME_COST": "1",
            **self.settings,
        })
        # The CLI migrates the schema and makes the shared signing key before any node starts.
        made = subprocess.run([PYTHON, "-m", "server.cli", "create-admin", ADMIN], input=f"{ADMIN_PASSWORD}\n",
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)
        if made.returncode != 0:
            raise RuntimeError(f"create-admin failed:\n{made.stdout}{made.stderr}")
        for index, port in enumerate(ports):
            name = chr(ord("a") + index)
            node = Node(name=name, port=port, env={**env, "MEDIATION_PORT": str(port)},
                        log_path=self.workdir / f"node-{name}.log", command=self.command)
            self.nodes.append(node)
            node.start()
        deadline = time.monotonic() + START_TIMEOUT
        for node in self.nodes:
            node.wait_ready(deadline)

    def stop(self) -> None:
        """Tear everything down; idempotent, and goes on past a failure."""
        atexit.unregister(self.stop)
        errors: list[BaseException] = []
        for stop in [*(node.stop for node in self.nodes), *(s.stop for s in (self.nginx, self.redis, self.postgres)
                                                             if s is not None)]:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - tear the rest down before reporting
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- faults -------------------------------------------------------------------------------------

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        node.kill(sig)

    def restart(self, node: Node) -> None:
        """Start a stopped or killed node again on its port; return once it is ready."""
        node.stop()
        node.start()
        node.wait_ready(time.monotonic() + START_TIMEOUT)

    def restart_redis(self) -> None:
        self.redis.restart()

    def restart_postgres(self) -> None:
        self.postgres.restart()

    # --- diagnosis ------------------------------------------------------------------------------------

    def diagnosed(self) -> contextlib.AbstractContextManager[None]:
        """On failure, print what nginx and the nodes logged."""
        return diagnosing(self.nodes, self.nginx)


@contextlib.contextmanager
def diagnosing(nodes: list[Node], proxy: NginxServer | None) -> Iterator[None]:
    """On failure, print what the proxy and the nodes logged."""
    try:
        yield
    except BaseException:
        for node in nodes:
            print(f"--- node {node.name} (port {node.port}) log tail ---\n{node.tail()}")
        if proxy is not None:
            print(f"--- nginx log tail ---\n{proxy.log_tail()}")
        raise
