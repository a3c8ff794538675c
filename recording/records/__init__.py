"""The sealed-record format (docs/records.md): kinds and keys, sealing, storage, manifest, transcript, tree."""
