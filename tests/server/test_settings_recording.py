"""Operational settings of the recorder: read from MEDIATION_* like every other setting."""

from __future__ import annotations

import pytest

from server.settings import Settings, SettingsError


def test_settings_recording_defaults_and_overrides() -> None:
    defaults = Settings.from_env({})
    assert defaults.recording_segment_seconds == 0.6 and defaults.recording_stop_grace_seconds == 30.0
    tuned = Settings.from_env({"MEDIATION_RECORDING_SEGMENT_SECONDS": "2.5",
                               "MEDIATION_RECORDING_STOP_GRACE_SECONDS": "90"})
    assert tuned.recording_segment_seconds == 2.5 and tuned.recording_stop_grace_seconds == 90.0


@pytest.mark.parametrize("variable", ["MEDIATION_RECORDING_SEGMENT_SECONDS", "MEDIATION_RECORDING_STOP_GRACE_SECONDS"])
@pytest.mark.parametrize("value", ["0", "-1", "inf", "a while"])
def test_settings_recording_bad_value_names_variable_and_value(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value) and repr(value) in str(caught.value)
