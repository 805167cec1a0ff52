"""Speech-to-text on the edge: the request form, model routing, cue sizing, rendering."""
