"""The compliance officer's offline tool: fetch a case bundle, verify it against the signed audit log, open it."""
