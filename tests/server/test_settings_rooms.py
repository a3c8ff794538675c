"""The room engine's settings come from MEDIATION_* variables, read once and handed to the rooms."""

from __future__ import annotations

import pytest

from server.app import room_settings
from server.settings import Settings, SettingsError


def test_settings_rooms_variables_reach_the_room_engine() -> None:
    settings = Settings.from_env({
        "MEDIATION_ROOM_CONNECTS_PER_MINUTE": "90", "MEDIATION_RECONNECT_GRACE_SECONDS": "30",
        "MEDIATION_ROOM_CHAT_RATE": "2.5", "MEDIATION_ROOM_CHAT_BURST": "4", "MEDIATION_ROOM_SIGNAL_RATE": "50",
        "MEDIATION_ROOM_SIGNAL_BURST": "120", "MEDIATION_ROOM_FLOOD_RATE": "3", "MEDIATION_ROOM_FLOOD_BURST": "40",
        "MEDIATION_NODE_BEAT_SECONDS": "1.5", "MEDIATION_NODE_TIMEOUT_SECONDS": "6",
        "MEDIATION_ROOM_LOCK_TTL_SECONDS": "3", "MEDIATION_ROOM_LOCK_WAIT_SECONDS": "8",
    })
    rooms = room_settings(settings)
    assert (rooms.connects_per_minute, rooms.reconnect_grace_seconds) == (90, 30)
    assert (rooms.chat_rate, rooms.chat_burst, rooms.signal_rate, rooms.signal_burst) == (2.5, 4, 50.0, 120)
    assert (rooms.flood_rate, rooms.flood_burst) == (3.0, 40)
    assert (rooms.node_beat_seconds, rooms.node_timeout_seconds) == (1.5, 6.0)
    assert (settings.room_lock_ttl_seconds, settings.room_lock_wait_seconds) == (3.0, 8.0)


def test_settings_rooms_defaults_are_the_documented_ones() -> None:
    rooms = room_settings(Settings.from_env({}))
    assert rooms.connects_per_minute == 120 and rooms.reconnect_grace_seconds == 60
    assert (rooms.chat_rate, rooms.chat_burst, rooms.signal_rate, rooms.signal_burst) == (5.0, 10, 100.0, 300)
    assert (rooms.node_beat_seconds, rooms.node_timeout_seconds) == (2.0, 10.0)


@pytest.mark.parametrize(("variable", "value"), [
    ("MEDIATION_ROOM_CONNECTS_PER_MINUTE", "0"), ("MEDIATION_ROOM_CHAT_RATE", "fast"),
    ("MEDIATION_ROOM_SIGNAL_BURST", "1.5"), ("MEDIATION_NODE_BEAT_SECONDS", "-2"),
    ("MEDIATION_ROOM_LOCK_TTL_SECONDS", "inf"), ("MEDIATION_NODE_TIMEOUT_SECONDS", "1"),
])
def test_settings_rooms_bad_value_names_variable_and_value(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value) and repr(float(value) if variable.endswith("TIMEOUT_SECONDS") else value) \
        in str(caught.value)
