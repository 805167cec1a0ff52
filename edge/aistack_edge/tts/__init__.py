"""What the TTS relay checks in a request before it passes it on."""
