"""What tests and benchmarks share: the case walk, the server node launcher and the service launcher.

- ``walk``: the HTTP client of a running server and the one walk of a case from application to a
  scheduled session (and the borrower's join link).
- ``nodes``: ``python -m server`` in a subprocess on its own port, and the administrator it starts with.
- ``services``: real PostgreSQL, Redis, nginx and coturn on free ports.

Benchmarks (bench/) import these too, so that a benchmark walks a case exactly as the tests do.
"""
