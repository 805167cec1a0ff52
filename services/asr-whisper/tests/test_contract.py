"""The internal ASR protocol's shared contract suite, run on this engine (its
`asr_engine` fixture is in conftest.py)."""

from aistack_testing.asr_contract import *  # noqa: F403
