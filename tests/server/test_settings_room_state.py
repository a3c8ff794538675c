"""Settings of room state at rest: the nodes' shared secret and Redis's password, each from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError

KEY = "ab" * 32


def test_settings_room_state_key_given_or_from_file_gives_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "room-state.key"
    path.write_text(KEY.upper() + "\n")
    assert Settings.from_env({"MEDIATION_ROOM_STATE_KEY": KEY}).room_state_secret() == bytes.fromhex(KEY)
    assert Settings.from_env({"MEDIATION_ROOM_STATE_KEY_FILE": str(path)}).room_state_secret() == bytes.fromhex(KEY)
    assert Settings().room_state_secret() is None


@pytest.mark.parametrize("value", ["", "ab" * 31, "zz" * 32])
def test_settings_room_state_key_bad_fails_without_printing_it(value: str) -> None:
    with pytest.raises(SettingsError, match="MEDIATION_ROOM_STATE_KEY=\\*+ is invalid") as raised:
        Settings.from_env({"MEDIATION_ROOM_STATE_KEY": value})
    assert value not in str(raised.value) or not value


def test_settings_room_state_key_file_bad_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.key"
    path.write_text("abcd")
    with pytest.raises(SettingsError, match="MEDIATION_ROOM_STATE_KEY_FILE=.*short.key.* is invalid"):
        Settings(room_state_key_file=str(path)).room_state_secret()
    with pytest.raises(SettingsError, match="both set"):
        Settings.from_env({"MEDIATION_ROOM_STATE_KEY": KEY, "MEDIATION_ROOM_STATE_KEY_FILE": str(path)})


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://redis:6379/0", "redis://:p%40ss%2Fw%3Ard@redis:6379/0"),
    ("rediss://user@h:6380/1", "rediss://user:p%40ss%2Fw%3Ard@h:6380/1"),
    ("redis://:stale@h:6379/0", "redis://:p%40ss%2Fw%3Ard@h:6379/0"),
    ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1&password=p%40ss%2Fw%3Ard"),
])
def test_settings_redis_password_file_goes_into_the_url(tmp_path: Path, url: str, expected: str) -> None:
    path = tmp_path / "redis-password"
    path.write_text("p@ss/w:rd\n")
    assert Settings(redis_url=url, redis_password_file=str(path)).redis_connection_url() == expected
    assert Settings(redis_url=url).redis_connection_url() == url


def test_settings_redis_password_file_empty_or_missing_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (empty, tmp_path / "missing"):
        with pytest.raises(SettingsError, match=f"MEDIATION_REDIS_PASSWORD_FILE='{path}' is invalid"):
            Settings(redis_url="redis://r:6379/0", redis_password_file=str(path)).redis_connection_url()
