"""Mediation session server: case record, HTTP API, accounts, audit log."""

__version__ = "0.1.0"
