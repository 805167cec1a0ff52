"""`python -m aistack_tts_piper [--host H] [--port P]`: run the Piper TTS service."""

from aistack_service import cli
from aistack_tts_piper.app import create_app
from aistack_tts_piper.settings import PiperSettings


def main() -> None:
    settings = PiperSettings()
    host, port = cli.address("tts-piper", settings.piper_host, settings.piper_port)
    cli.start_logging("tts-piper", settings)
    cli.run(create_app(settings), host, port)


if __name__ == "__main__":
    main()
