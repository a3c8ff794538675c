"""Recording and records: the recorder, the sealed-record format and the officer's offline tool.

recorder/ joins a room and seals what it records; records/ is the record format (docs/records.md);
compliance/ verifies and opens a case bundle. Imports neither server nor signaling (tests/test_layering.py).
"""
