"""Settings of party delivery: SMTP and the SMS gateway are off by default, and their secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.channels import outside_channels
from server.settings import Settings, SettingsError


def test_settings_delivery_defaults_turn_on_no_outside_channel() -> None:
    settings = Settings.from_env({})
    assert settings.smtp_host == "" and settings.sms_url == "" and outside_channels(settings) == {}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MEDIATION_SMTP_PORT", "smtp"), ("MEDIATION_SMTP_HOST", "mail host"), ("MEDIATION_SMTP_FROM", "nobody"),
     ("MEDIATION_SMTP_FROM", "Mediation <m@example.org>"), ("MEDIATION_SMTP_STARTTLS", "maybe"),
     ("MEDIATION_SMS_URL", "ftp://gateway"), ("MEDIATION_DELIVERY_TIMEOUT_SECONDS", "0")],
)
def test_settings_delivery_bad_value_names_variable_and_value(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value) and repr(value) in str(caught.value)


def test_settings_sms_url_without_token_is_refused() -> None:
    with pytest.raises(SettingsError, match="MEDIATION_SMS_TOKEN is empty"):
        Settings.from_env({"MEDIATION_SMS_URL": "https://sms.example/messages"})


def test_settings_smtp_password_and_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("from-the-file\n")
    with pytest.raises(SettingsError, match="give one of them"):
        Settings.from_env({"MEDIATION_SMTP_PASSWORD": "x", "MEDIATION_SMTP_PASSWORD_FILE": str(secret)})
    with pytest.raises(SettingsError, match="no such file"):
        Settings.from_env({"MEDIATION_SMTP_PASSWORD_FILE": str(tmp_path / "missing")})
    settings = Settings.from_env({"MEDIATION_SMTP_PASSWORD_FILE": str(secret)})
    assert settings.smtp_secret.reveal() == "from-the-file"


def test_settings_delivery_secrets_never_print() -> None:
    settings = Settings.from_env({"MEDIATION_SMTP_PASSWORD": "hunter2-smtp", "MEDIATION_SMS_URL": "https://s.example/m",
                                  "MEDIATION_SMS_TOKEN": "hunter2-sms"})
    assert "hunter2" not in repr(settings)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MEDIATION_SMS_TOKEN": "hunter2-sms", "MEDIATION_SMTP_PORT": "x"})
    assert "hunter2" not in str(caught.value)
