"""aistack's CPU text-to-speech service: Piper voices behind OpenAI's /v1/audio/speech."""

PROVIDER = "Piper"
