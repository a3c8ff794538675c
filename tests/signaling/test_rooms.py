"""Rooms through real socket.io clients against a running server: lobby, chat, relay, moderation, caucus."""

from __future__ import annotations

import socketio
import pytest

from recording.records.kinds import RecordKind
from tests.conftest import walk_to_scheduled
from tests.recording.agekeys import generate
from tests.signaling.conftest import Session, issue_link
from tests.support import walk

OFFER = {"type": "offer", "sdp": "v=0\r\n"}


async def _refusal(session: Session, auth: dict) -> dict:
    peer = session.participant(auth)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect()
    return peer.refusal


async def test_connect_without_credentials_is_refused_with_reason(room: Session) -> None:
    assert (await _refusal(room, {}))["code"] == "bad_token"
    assert (await _refusal(room, {"token": "jln_" + "A" * 43}))["code"] == "bad_token"
    assert (await _refusal(room, {"token": room.journey.mediator}))["code"] == "bad_session"
    assert (await _refusal(room, {"token": room.journey.receipt}))["code"] == "bad_token"


async def test_connect_staff_not_assigned_is_refused(room: Session) -> None:
    _, other_mediator = await room.api.staff("mediator")
    _, officer = await room.api.staff("case_officer")
    for token, code in ((other_mediator, "not_a_participant"), (officer, "not_a_participant")):
        refusal = await _refusal(room, {"token": token, "session_id": room.journey.session_id})
        assert refusal["code"] == code


async def test_lobby_waits_for_mediator_then_admission(room: Session) -> None:
    borrower = room.borrower()
    joined = await borrower.join()
    assert joined["status"] == "lobby" and joined["room"]["mediator_present"] is False
    assert [p["participant_id"] for p in joined["room"]["participants"]] == [borrower.participant_id]
    refused = await borrower.request("send_chat", {"text": "hello?"})
    assert refused == {"ok": False, "error": "not_admitted", "message": refused["message"]}
    assert (await borrower.wait_for("error"))["code"] == "not_admitted"
    mediator = room.mediator()
    await mediator.join()
    await borrower.wait_for("room_state", lambda s: s["mediator_present"])
    assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
    await borrower.wait_for("admitted")
    state = await borrower.wait_for("room_state", lambda s: len(s["participants"]) == 2)
    assert {p["role"] for p in state["participants"]} == {"mediator", "borrower"}


async def test_party_cannot_moderate(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    for event, payload in (("admit", {"participant_id": bank.participant_id}), ("end_session", {}),
                           ("remove_participant", {"participant_id": bank.participant_id}),
                           ("open_caucus", {"participant_id": bank.participant_id}), ("lock_room", {"locked": True})):
        result = await borrower.request(event, payload)
        assert result["ok"] is False and result["error"] == "forbidden", event
    state = await mediator.request("chat_history", {})
    assert state["ok"]


async def test_chat_is_sequenced_acknowledged_and_delivered(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    first = await borrower.request("send_chat", {"text": "  我可以每月还款两千元。 "})
    second = await bank.request("send_chat", {"text": "<b>noted</b>"})
    assert first["ok"] and second["ok"] and second["seq"] == first["seq"] + 1
    for peer in (mediator, bank):
        message = await peer.wait_for("chat_message", lambda m: m["seq"] == first["seq"])
        assert message["text"] == "我可以每月还款两千元。" and message["participant_id"] == borrower.participant_id
    history = await mediator.request("chat_history", {})
    assert [m["text"] for m in history["messages"]] == ["我可以每月还款两千元。", "<b>noted</b>"]


async def test_chat_limits_are_enforced(room: Session) -> None:
    mediator, _, borrower = await room.admitted_trio()
    assert (await borrower.request("send_chat", {"text": "x" * 2001}))["error"] == "message_too_long"
    assert (await borrower.request("send_chat", {"text": "   "}))["error"] == "empty_message"
    assert (await borrower.request("send_chat", {"text": "bell\x07"}))["error"] == "invalid_payload"
    assert (await borrower.request("send_chat", {"text": 5}))["error"] == "invalid_payload"
    assert (await mediator.request("mute_chat", {"participant_id": borrower.participant_id, "muted": True}))["ok"]
    await borrower.wait_for("chat_muted", lambda d: d["muted"])
    assert (await borrower.request("send_chat", {"text": "let me speak"}))["error"] == "chat_muted"


async def test_chat_flood_is_rate_limited(room: Session) -> None:
    _, _, borrower = await room.admitted_trio()
    results = [await borrower.request("send_chat", {"text": f"spam {i}"}) for i in range(30)]
    assert any(r.get("error") == "rate_limited" for r in results)
    assert sum(1 for r in results if r["ok"]) < 30


async def test_signal_is_relayed_only_between_admitted_members(room: Session) -> None:
    mediator = room.mediator()
    await mediator.join()
    borrower = room.borrower()
    await borrower.join()
    # Lobby members neither send nor receive signaling.
    assert (await mediator.request("signal", {"to": borrower.participant_id, "kind": "offer",
                                              "payload": OFFER}))["error"] == "not_admitted"
    assert (await borrower.request("signal", {"to": mediator.participant_id, "kind": "offer",
                                              "payload": OFFER}))["error"] == "not_admitted"
    await mediator.request("admit", {"participant_id": borrower.participant_id})
    await borrower.wait_for("admitted")
    assert (await mediator.request("signal", {"to": borrower.participant_id, "kind": "offer",
                                              "payload": OFFER}))["ok"]
    relayed = await borrower.wait_for("signal")
    assert relayed == {"from": mediator.participant_id, "kind": "offer", "payload": OFFER}
    bad = await mediator.request("signal", {"to": borrower.participant_id, "kind": "answer", "payload": OFFER})
    assert bad["error"] == "invalid_payload"


async def test_signal_never_crosses_rooms(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    other = await walk_to_scheduled(room.api, officer=room.journey.officer)
    stranger = room.participant({"token": await issue_link(room.api, other, other.borrower_id)})
    other_mediator = room.participant({"token": other.mediator, "session_id": other.session_id})
    await other_mediator.join()
    await stranger.join()
    await other_mediator.request("admit", {"participant_id": stranger.participant_id})
    await stranger.wait_for("admitted")
    result = await stranger.request("signal", {"to": borrower.participant_id, "kind": "offer", "payload": OFFER})
    assert result["error"] == "unknown_participant"
    sent = await stranger.request("send_chat", {"text": "wrong room"})
    assert sent["ok"]
    await mediator.request("send_chat", {"text": "sync"})
    await borrower.wait_for("chat_message", lambda m: m["text"] == "sync")
    assert all(m["text"] != "wrong room" for m in borrower.seen("chat_message"))


async def test_caucus_isolates_the_party_left_out(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    assert (await mediator.request("open_caucus", {"participant_id": borrower.participant_id}))["ok"]
    await bank.wait_for("caucus_in_progress")
    isolation = await borrower.wait_for("media_isolation", lambda d: d["stop_sending_to"])
    assert isolation["stop_sending_to"] == [bank.participant_id]
    assert (await bank.wait_for("media_isolation", lambda d: d["stop_sending_to"]))["stop_sending_to"] == sorted(
        [mediator.participant_id, borrower.participant_id], key=[mediator.participant_id,
                                                                 borrower.participant_id].index)
    mark = len(bank.events)
    await borrower.request("typing", {"active": True})
    assert (await borrower.request("send_chat", {"text": "private: I could pay more"}))["ok"]
    await mediator.wait_for("chat_message", lambda m: m["text"].startswith("private"))
    await borrower.request("media_state", {"audio": True, "video": True})
    # No signaling crosses the caucus, from either side.
    assert (await bank.request("signal", {"to": borrower.participant_id, "kind": "offer",
                                          "payload": OFFER}))["error"] == "isolated"
    assert (await borrower.request("signal", {"to": bank.participant_id, "kind": "offer",
                                              "payload": OFFER}))["error"] == "isolated"
    # The bank's own chat still works in the main room, and it never sees caucus traffic.
    assert (await bank.request("send_chat", {"text": "still here"}))["ok"]
    history = await bank.request("chat_history", {})
    assert [m["text"] for m in history["messages"]] == ["still here"]
    assert (await mediator.request("close_caucus", {}))["ok"]
    await bank.wait_for("caucus_ended")
    after = bank.events[mark:]
    assert not [e for e, d in after if e in ("typing", "chat_message") and d.get("participant_id") != bank.participant_id]
    for event, data in after:
        if event == "room_state" and data["caucus"]["active"]:
            assert "members" not in data["caucus"]
            assert not any(p["in_caucus"] for p in data["participants"])
            inside = [p for p in data["participants"] if p["participant_id"] != bank.participant_id]
            assert all(not p["audio"] and not p["video"] for p in inside)
    await bank.wait_for("media_isolation", lambda d: d["stop_sending_to"] == [], after=mark)
    mediator_history = await mediator.request("chat_history", {})
    assert [m["text"] for m in mediator_history["messages"]] == ["private: I could pay more", "still here"]


async def test_remove_participant_revokes_their_link(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    assert (await mediator.request("remove_participant", {"participant_id": borrower.participant_id,
                                                          "reason": "abusive"}))["ok"]
    assert (await borrower.wait_for("removed"))["reason"] == "abusive"
    state = await bank.wait_for("room_state", lambda s: len(s["participants"]) == 2)
    assert borrower.participant_id not in {p["participant_id"] for p in state["participants"]}
    refusal = await _refusal(room, {"token": room.borrower_link})
    assert refusal["code"] == "removed"
    # A removed staff member is kept out by the room itself.
    assert (await mediator.request("remove_participant", {"participant_id": bank.participant_id}))["ok"]
    refusal = await _refusal(room, {"token": room.journey.bank, "session_id": room.journey.session_id})
    assert refusal["code"] == "removed"


async def test_mediator_drop_sends_parties_to_lobby_and_reconnect_keeps_control(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    await mediator.close()
    assert (await borrower.wait_for("returned_to_lobby"))["reason"] == "mediator_left"
    await bank.wait_for("returned_to_lobby")
    assert (await borrower.request("send_chat", {"text": "anyone?"}))["error"] == "not_admitted"
    # Nobody else gains control.
    assert (await bank.request("admit", {"participant_id": borrower.participant_id}))["error"] in (
        "forbidden", "not_admitted")
    back = room.mediator()
    rejoined = await back.join()
    assert rejoined["status"] == "admitted" and rejoined["role"] == "mediator"
    assert (await back.request("admit", {"participant_id": borrower.participant_id}))["ok"]


async def test_party_reconnect_within_grace_keeps_place_and_mute(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    await mediator.request("mute_chat", {"participant_id": borrower.participant_id, "muted": True})
    await borrower.close()
    await mediator.wait_for("room_state", lambda s: any(
        p["participant_id"] == borrower.participant_id and not p["connected"] for p in s["participants"]))
    again = room.borrower()
    rejoined = await again.join()
    assert rejoined["status"] == "admitted"
    me = [p for p in rejoined["room"]["participants"] if p["participant_id"] == again.participant_id][0]
    assert me["chat_muted"] is True
    assert (await again.request("send_chat", {"text": "back"}))["error"] == "chat_muted"


async def test_deleted_message_hidden_from_parties_kept_for_mediator(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    sent = await bank.request("send_chat", {"text": "an insult"})
    await borrower.wait_for("chat_message", lambda m: m["seq"] == sent["seq"])
    assert (await mediator.request("delete_message", {"seq": sent["seq"]}))["ok"]
    assert (await borrower.wait_for("message_deleted"))["seq"] == sent["seq"]
    assert (await borrower.request("chat_history", {}))["messages"] == []
    kept = (await mediator.request("chat_history", {}))["messages"]
    assert kept[0]["text"] == "an insult" and kept[0]["deleted"]["by"] == mediator.participant_id
    assert (await mediator.request("delete_message", {"seq": sent["seq"]}))["error"] == "already_deleted"
    assert (await mediator.request("delete_message", {"seq": 99}))["error"] == "unknown_message"


async def test_locked_room_refuses_newcomers_and_ended_session_refuses_everyone(room: Session) -> None:
    mediator = room.mediator()
    await mediator.join()
    assert (await mediator.request("lock_room", {"locked": True}))["ok"]
    assert (await _refusal(room, {"token": room.borrower_link}))["code"] == "room_locked"
    await mediator.request("lock_room", {"locked": False})
    borrower = room.borrower()
    await borrower.join()
    assert (await mediator.request("end_session", {}))["ok"]
    await borrower.wait_for("session_ended")
    assert (await _refusal(room, {"token": room.borrower_link}))["code"] == "session_ended"


async def test_chat_only_session_relays_no_media_signaling(room: Session) -> None:
    journey = room.journey
    status, case = await room.api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                       json={"starts_at": "2099-01-01T10:00:00+00:00", "mode": "chat"})
    assert status == 422  # more than a year ahead
    status, case = await room.api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                       json={"starts_at": "2027-06-01T10:00:00+00:00", "mode": "chat"})
    chat_session = [s for s in case["sessions"] if s["mode"] == "chat"][0]["session_id"]
    for token, who in ((journey.receipt, "borrower"), (journey.bank, "bank")):
        await walk.confirm(room.api.http, journey.path, token, journey.devices[who], chat_session)
    mediator = room.participant({"token": journey.mediator, "session_id": chat_session})
    joined = await mediator.join()
    assert joined["mode"] == "chat"
    bank = room.participant({"token": journey.bank, "session_id": chat_session})
    await bank.join()
    await mediator.request("admit", {"participant_id": bank.participant_id})
    await bank.wait_for("admitted")
    assert (await bank.request("signal", {"to": mediator.participant_id, "kind": "offer",
                                          "payload": OFFER}))["error"] == "chat_only"
    assert (await bank.request("send_chat", {"text": "text works"}))["ok"]


async def test_spoofed_lifecycle_events_change_nothing(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    await borrower.client.emit("disconnect", "forged", namespace="/room")
    await borrower.client.emit("connect", {"REMOTE_ADDR": "1.2.3.4"}, namespace="/room")
    await borrower.wait_for("error", lambda e: e["code"] == "unknown_event")
    assert (await borrower.request("send_chat", {"text": "still admitted"}))["ok"]
    state = await mediator.wait_for("chat_message", lambda m: m["text"] == "still admitted")
    assert state["participant_id"] == borrower.participant_id


async def test_ice_servers_carry_time_limited_turn_credentials(tmp_path) -> None:
    from signaling.ice import ice_servers, turn_credentials

    username, credential = turn_credentials("s3cret", "pty_x", 600, now=lambda: 1_700_000_000)
    assert username == "1700000600:pty_x"
    import base64
    import hashlib
    import hmac

    assert credential == base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    servers = ice_servers(("stun:stun.example:3478",), ("turn:turn.example:3478",), "s3cret", "pty_x", 600)
    assert servers[0] == {"urls": ["stun:stun.example:3478"]} and servers[1]["username"].endswith(":pty_x")


async def test_chat_number_sealed_by_a_lost_attempt_is_skipped_not_reused(room: Session, tmp_path) -> None:
    _, compliance = await room.api.staff("compliance_officer")
    key = generate(tmp_path / "officer")
    await room.api.approve_key(compliance, key.recipient)
    mediator, bank, _ = await room.admitted_trio()
    first = await mediator.request("send_chat", {"text": "one"})
    assert first["ok"] and first["seq"] == 1
    # A node sealed message 2, then died before the room store kept it.
    journey = room.journey
    await room.api.services.records.seal_and_file(b'{"text": "lost"}', actor="test:node", case_id=journey.case_id,
                                                  session_id=journey.session_id, kind=RecordKind.CHAT_MESSAGE,
                                                  index=2)
    after = await bank.request("send_chat", {"text": "three"})
    assert after["ok"] and after["seq"] == 3, after
    history = (await mediator.request("chat_history", {}))["messages"]
    assert [(m["seq"], m["text"]) for m in history] == [(1, "one"), (3, "three")]
    assert (await mediator.request("delete_message", {"seq": 3}))["ok"]
    assert (await mediator.request("delete_message", {"seq": 2}))["error"] == "unknown_message"
