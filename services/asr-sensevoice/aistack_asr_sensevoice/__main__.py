from aistack_asr.main import serve
from aistack_asr_sensevoice.backend import SenseVoiceBackend
from aistack_asr_sensevoice.settings import SenseVoiceSettings


def main() -> None:
    serve(SenseVoiceSettings, SenseVoiceBackend)


if __name__ == "__main__":
    main()
