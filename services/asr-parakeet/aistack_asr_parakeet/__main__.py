from aistack_asr.main import serve
from aistack_asr_parakeet.backend import ParakeetBackend
from aistack_asr_parakeet.settings import ParakeetSettings


def main() -> None:
    serve(ParakeetSettings, ParakeetBackend)


if __name__ == "__main__":
    main()
