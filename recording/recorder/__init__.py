"""The recording peer: one more, visible participant of a room that muxes what it receives into sealed WebM."""
