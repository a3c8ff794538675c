"""Operational settings of the recorder: read from MEDIATION_* like every other setting."""

from __future__ import annotations

import pytest

from server.settings import Settings, SettingsError


def test_settings_recording_segment_seconds_default_and_override() -> None:
    assert Settings.from_env({}).recording_segment_seconds == 5.0
    assert Settings.from_env({"MEDIATION_RECORDING_SEGMENT_SECONDS": "2.5"}).recording_segment_seconds == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "inf", "a while"])
def test_settings_recording_segment_seconds_bad_value_names_variable_and_value(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MEDIATION_RECORDING_SEGMENT_SECONDS": value})
    assert "MEDIATION_RECORDING_SEGMENT_SECONDS" in str(caught.value) and repr(value) in str(caught.value)
