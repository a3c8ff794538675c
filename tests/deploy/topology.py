"""The deployment of docs/deploy.md on loopback, from Debian packages and no containers.

nginx in front of two or three ``python -m server`` nodes, each on its own port, sharing one
PostgreSQL (the case record), one Redis with an append-only file (rooms and socket.io fan-out),
one audit signing key and one data directory (sealed records). Usage::

    with Topology(tmp_path, nodes=2) as topology:
        topology.url                      # nginx: what clients use
        topology.kill(topology.nodes[0])  # SIGKILL
        topology.restart(topology.nodes[0])
        topology.restart_redis(); topology.restart_postgres()

Like ``tests/support/services.py`` the API is synchronous; async tests call the slow parts through
``asyncio.to_thread`` so their clients keep running. ``stop()`` always tears everything down.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
from pathlib import Path

from tests.support.mailbox import MailboxThread
from tests.support.nodes import (PYTHON, SECOND_ADMIN, SECOND_ADMIN_PASSWORD, START_TIMEOUT, Node, create_admin,
                                 diagnosing, node_environment, start_nodes)
from tests.support.services import NginxServer, PostgresServer, RedisServer, free_port


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
        # The parties' mail (their one-time codes): on its own thread, as the topology outlives a test's loop.
        self.mailbox = MailboxThread()

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
        self.mailbox.start()
        ports = [free_port() for _ in range(self.count)]
        self.nginx = NginxServer(ports).start()
        shared = self.workdir / "shared"  # stands for the shared volume of docs/deploy.md
        secrets_dir = self.workdir / "secrets"
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = node_environment(**{
            "MEDIATION_DATABASE_URL": self.postgres.dsn,
            "MEDIATION_REDIS_URL": self.redis.url,
            "MEDIATION_DATA_DIR": str(shared),
            "MEDIATION_AUDIT_KEY_FILE": str(secrets_dir / "audit-signing.key"),
            "MEDIATION_PUBLIC_URL": self.nginx.url,
            "MEDIATION_TRUSTED_PROXIES": "127.0.0.1",
            # Every test client comes through nginx from 127.0.0.1: one address for all.
            "MEDIATION_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
            "MEDIATION_LOGIN_ADDRESS_FREE_FAILURES": "100000",
            "MEDIATION_APPLICATIONS_PER_MINUTE": "100000",
            **self.mailbox.environment(),
            **self.settings,
        })
        create_admin(env)  # migrates the schema and makes the shared signing key before any node starts
        create_admin(env, SECOND_ADMIN, SECOND_ADMIN_PASSWORD)
        for index, port in enumerate(ports):
            name = chr(ord("a") + index)
            self.nodes.append(Node(name=name, port=port, env={**env, "MEDIATION_PORT": str(port)},
                                   log_path=self.workdir / f"node-{name}.log", command=self.command))
        start_nodes(self.nodes)

    def stop(self) -> None:
        """Tear everything down; idempotent, and goes on past a failure."""
        atexit.unregister(self.stop)
        errors: list[BaseException] = []
        for stop in [*(node.stop for node in self.nodes), *(s.stop for s in (self.nginx, self.redis, self.postgres)
                                                             if s is not None), self._stop_mailbox]:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - tear the rest down before reporting
                errors.append(exc)
        if errors:
            raise errors[0]

    def _stop_mailbox(self) -> None:
        if self.mailbox.box.port:
            self.mailbox.stop()

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- faults -------------------------------------------------------------------------------------

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        node.kill(sig)

    def restart(self, node: Node) -> None:
        node.restart()

    def restart_redis(self) -> None:
        self.redis.restart()

    def restart_postgres(self) -> None:
        self.postgres.restart()

    # --- diagnosis ------------------------------------------------------------------------------------

    def node_logged(self, message: str) -> bool:
        """Whether any node's log has a line with this ``message``."""
        return any(f'"message": "{message}"' in node.log_path.read_text(errors="replace")
                   for node in self.nodes if node.log_path.exists())

    def diagnosed(self) -> contextlib.AbstractContextManager[None]:
        """On failure, print what nginx and the nodes logged."""
        return diagnosing(self.nodes, self.nginx)
