"""Rooms: the socket.io adapter and the room engine under it.

``namespace`` (socket.io adapter) -> ``engine`` (connect, a request's pipeline, disconnect) -> ``requests``
(the table: each event's payload model, handler, senders, lobby rule, rate budget) -> handlers by area:
``lobby``, ``chat``, ``moderation``, ``caucus``, ``media``, ``consent``. ``turns`` runs a handler inside its
room's transaction and sends what it queued; ``views`` is what each member may see. Room storage:
``roomstate`` (interface, in-process) and ``redisstate``; node liveness apart from it: ``liveness`` and
``redisliveness``, watched by ``nodes``; ``resync`` and ``fanout`` cover a lost Redis subscription.
"""
