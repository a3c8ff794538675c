"""Settings come from MEDIATION_* variables; a bad value stops start-up naming variable and value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import Settings, SettingsError


def test_settings_defaults_run_embedded() -> None:
    settings = Settings.from_env({})
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url == "" and settings.port == 8080 and settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MEDIATION_PORT", "eighty"), ("MEDIATION_PORT", "70000"), ("MEDIATION_DATABASE_URL", "mysql://x"),
     ("MEDIATION_COOKIE_SECURE", "perhaps"), ("MEDIATION_STUN_URLS", "http://stun.example"),
     ("MEDIATION_SESSION_TTL_SECONDS", "-5"), ("MEDIATION_LOG_LEVEL", "chatty"),
     ("MEDIATION_AUDIT_SEQUENCE_SECONDS", "0"), ("MEDIATION_AUDIT_SEQUENCE_SECONDS", "nan"),
     ("MEDIATION_AUDIT_SEQUENCE_SECONDS", "soon")],
)
def test_settings_bad_value_names_variable_and_value(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value) and repr(value) in str(caught.value)


def test_settings_unknown_variable_fails_loudly() -> None:
    with pytest.raises(SettingsError, match="MEDIATION_PROT"):
        Settings.from_env({"MEDIATION_PROT": "8080"})


def test_settings_secret_never_prints() -> None:
    settings = Settings.from_env({"MEDIATION_TURN_SECRET": "hunter2-turn-secret"})
    assert settings.turn_secret.reveal() == "hunter2-turn-secret"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.turn_secret)


def test_settings_invalid_value_stops_startup_with_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server"], env={"MEDIATION_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 2
    assert "MEDIATION_PORT='not-a-port'" in result.stderr


def test_settings_file_variant_reads_secret_from_file_and_refuses_both(tmp_path: Path) -> None:
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text("s3cret-from-file\n")
    settings = Settings.from_env({"MEDIATION_TURN_SECRET_FILE": str(secret_file),
                                  "MEDIATION_DATABASE_URL_FILE": str(_write(tmp_path / "db", "sqlite+aiosqlite:///x.db"))})
    assert settings.turn_secret.reveal() == "s3cret-from-file" and settings.database_url == "sqlite+aiosqlite:///x.db"
    with pytest.raises(SettingsError, match="MEDIATION_TURN_SECRET and MEDIATION_TURN_SECRET_FILE"):
        Settings.from_env({"MEDIATION_TURN_SECRET": "x", "MEDIATION_TURN_SECRET_FILE": str(secret_file)})
    with pytest.raises(SettingsError, match="MEDIATION_TURN_SECRET_FILE=.*cannot read") as caught:
        Settings.from_env({"MEDIATION_TURN_SECRET_FILE": str(tmp_path / "missing")})
    assert "s3cret" not in str(caught.value)
    with pytest.raises(SettingsError, match="MEDIATION_PORT=.*invalid"):
        Settings.from_env({"MEDIATION_PORT_FILE": str(_write(tmp_path / "port", "not a port"))})
    with pytest.raises(SettingsError, match="unknown setting MEDIATION_NO_SUCH_FILE"):
        Settings.from_env({"MEDIATION_NO_SUCH_FILE": str(secret_file)})


def test_settings_own_file_settings_are_not_read_as_the_file_variant(tmp_path: Path) -> None:
    """ROOM_STATE_KEY_FILE, SMTP_PASSWORD_FILE and REDIS_PASSWORD_FILE are settings of their own: each names
    its file and is read where it is used, not as the value of ROOM_STATE_KEY, SMTP_PASSWORD or REDIS_PASSWORD."""
    key_file = _write(tmp_path / "room-state.key", "ab" * 32 + "\n")
    smtp_file = _write(tmp_path / "smtp-password", "smtp-secret\n")
    settings = Settings.from_env({"MEDIATION_ROOM_STATE_KEY_FILE": str(key_file),
                                  "MEDIATION_SMTP_PASSWORD_FILE": str(smtp_file)})
    assert not settings.room_state_key and settings.room_state_key_file == str(key_file)
    assert settings.room_state_secret() == bytes.fromhex("ab" * 32)
    assert not settings.smtp_password and settings.smtp_secret.reveal() == "smtp-secret"
    with pytest.raises(SettingsError, match="ROOM_STATE_KEY and MEDIATION_ROOM_STATE_KEY_FILE are both set"):
        Settings.from_env({"MEDIATION_ROOM_STATE_KEY": "cd" * 32, "MEDIATION_ROOM_STATE_KEY_FILE": str(key_file)})


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_settings_janus_needs_both_secrets_which_never_print(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MEDIATION_JANUS_URLS=.*MEDIATION_JANUS_API_SECRET"):
        Settings.from_env({"MEDIATION_JANUS_URLS": "http://127.0.0.1:8088/janus"})
    with pytest.raises(SettingsError, match="MEDIATION_JANUS_URLS="):
        Settings.from_env({"MEDIATION_JANUS_URLS": "janus:8088"})
    secret = tmp_path / "janus-api-secret"
    secret.write_text("a" * 64 + "\n")
    settings = Settings.from_env({"MEDIATION_JANUS_URLS": "http://127.0.0.1:8088/janus/, http://10.0.0.2:8088/janus",
                                  "MEDIATION_JANUS_API_SECRET_FILE": str(secret),
                                  "MEDIATION_JANUS_ADMIN_KEY": "b" * 64})
    assert settings.janus_urls == ("http://127.0.0.1:8088/janus", "http://10.0.0.2:8088/janus")
    assert settings.janus_api_secret.reveal() == "a" * 64
    assert "a" * 64 not in repr(settings) and "b" * 64 not in repr(settings)
    assert Settings().janus_urls == ()  # the embedded default: the browsers' mesh
