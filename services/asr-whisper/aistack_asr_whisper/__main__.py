from aistack_asr.main import serve
from aistack_asr_whisper.backend import WhisperBackend
from aistack_asr_whisper.settings import WhisperSettings


def main() -> None:
    serve(WhisperSettings, WhisperBackend)


if __name__ == "__main__":
    main()
