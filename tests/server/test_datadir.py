"""The data directory is 0700 and the database files 0600, whoever creates them and under any umask."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import _serve, application, make_settings
from tests.support.nodes import ADMIN_PASSWORD, PYTHON, ROOT, node_environment


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _database_files(data_dir: Path) -> list[Path]:
    files = [data_dir / f"mediation.db{suffix}" for suffix in ("", "-wal", "-shm")]
    return [path for path in files if path.exists()]


def test_datadir_create_admin_under_open_umask_makes_0700_directory_and_0600_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "data"
    made = subprocess.run([PYTHON, "-m", "server.cli", "create-admin", "admin"], input=f"{ADMIN_PASSWORD}\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False, umask=0,
                          env=node_environment(MEDIATION_DATA_DIR=str(data_dir)))
    assert made.returncode == 0, made.stderr
    assert _mode(data_dir) == 0o700 and _mode(data_dir.parent) == 0o700
    files = _database_files(data_dir)
    assert data_dir / "mediation.db" in files
    for path in [*files, data_dir / "audit-signing.key"]:
        assert _mode(path) == 0o600, (path, oct(_mode(path)))


async def test_datadir_server_under_open_umask_tightens_existing_directory_and_makes_0600_files(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    previous = os.umask(0)
    try:
        async for api in _serve(make_settings(tmp_path, data_dir=data_dir)):
            status, _ = await api.call("POST", "/api/applications", json=application())
            assert status == 201
            assert _mode(data_dir) == 0o700
            files = _database_files(data_dir)
            assert {data_dir / "mediation.db", data_dir / "mediation.db-wal"} <= set(files)
            for path in files:
                assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        os.umask(previous)
