"""Server nodes as subprocesses: ``python -m server`` on its own port, as an operator runs it.

Like ``tests/support/services.py`` the API is synchronous; async tests call the slow parts through
``asyncio.to_thread`` so their clients keep running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.services import NginxServer

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
ADMIN, ADMIN_PASSWORD = "admin", "the first operator's long password"  # must not contain the username
# A second administrator the operator made: the first officer's key needs two independent ones.
SECOND_ADMIN, SECOND_ADMIN_PASSWORD = "admin2", "another administrator's long password"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def node_environment(**settings: str) -> dict[str, str]:
    """This process's environment without its ``MEDIATION_*`` variables, then ``settings``.

    Argon2 is made cheap: its cost is a production setting, not behaviour under test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    env.update({"MEDIATION_HOST": "127.0.0.1", "MEDIATION_PASSWORD_MEMORY_KIB": "1024",
                "MEDIATION_PASSWORD_TIME_COST": "1", **settings})
    return env


def create_admin(env: dict[str, str], username: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    """``mediation-admin create-admin``: migrates the schema and makes the signing key before any node starts."""
    made = subprocess.run([PYTHON, "-m", "server.cli", "create-admin", username], input=f"{password}\n",
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)
    if made.returncode != 0:
        raise RuntimeError(f"create-admin failed:\n{made.stdout}{made.stderr}")


@dataclasses.dataclass
class Node:
    """One server process; its port and environment outlive restarts."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    command: list[str] = dataclasses.field(default_factory=lambda: [PYTHON, "-m", "server"])
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

    def restart(self) -> None:
        """Start a stopped or killed node again on its port; return once it is ready."""
        self.stop()
        self.start()
        self.wait_ready(time.monotonic() + START_TIMEOUT)

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

    def runqueue_seconds(self) -> float | None:
        """Time the node's threads spent runnable but waiting for a CPU so far (see ``runqueue_seconds``)."""
        return runqueue_seconds(self.pid)

    def rss_bytes(self) -> int:
        """Resident memory of the node process (/proc/<pid>/status VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for node {self.name}")


def runqueue_seconds(pid: int) -> float | None:
    """Time the process's threads spent runnable but waiting for a CPU (Linux schedstat), in seconds."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


def start_nodes(nodes: Sequence[Node]) -> None:
    """Start every node, then wait until each answers /readyz."""
    for node in nodes:
        node.start()
    deadline = time.monotonic() + START_TIMEOUT
    for node in nodes:
        node.wait_ready(deadline)


@contextlib.contextmanager
def diagnosing(nodes: Sequence[Node], proxy: NginxServer | None = None) -> Iterator[None]:
    """On failure, print what the proxy and the nodes logged."""
    try:
        yield
    except BaseException:
        for node in nodes:
            print(f"--- node {node.name} (port {node.port}) log tail ---\n{node.tail()}")
        if proxy is not None:
            print(f"--- nginx log tail ---\n{proxy.log_tail()}")
        raise
