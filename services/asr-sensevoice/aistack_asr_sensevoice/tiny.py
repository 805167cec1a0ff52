"""Build a tiny SenseVoice Small + fsmn-vad pair of the real architecture, with untrained weights.

The directories have the same files the published models have (config.yaml, configuration.json,
model.pt, am.mvn, the SentencePiece model), so the service's real loading path reads them.
The recognizer's words are meaningless; the VAD is wired so that it follows the audio's energy,
which gives real speech/pause segmentation. Used by the tests, and by smoke tests that need a
model directory where the real weights are not at hand:

    python -m aistack_asr_sensevoice.tiny DEST_DIR
"""

import argparse
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

BPE_FILE = "chn_jpn_yue_eng_ko_spectok.bpe.model"

# The special tokens of SenseVoice's tokenizer: language, emotion, event and text-norm tags.
TAGS = (
    "<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>",
    "<|HAPPY|>", "<|SAD|>", "<|ANGRY|>", "<|NEUTRAL|>", "<|EMO_UNKNOWN|>",
    "<|Speech|>", "<|BGM|>", "<|Laughter|>", "<|Applause|>", "<|Event_UNK|>",
    "<|withitn|>", "<|woitn|>",
)  # fmt: skip

CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "it was a sunny day in the park",
    "we met at noon and talked for an hour",
    "please call me back when you are ready",
    "numbers like one two three four five six seven eight nine ten",
)

# SenseVoice decodes timestamps with a hard-coded token id 124: the vocabulary must reach it.
MIN_VOCAB = 125

_SENSEVOICE_CONFIG = {
    "model": "SenseVoiceSmall",
    "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
    "encoder": "SenseVoiceEncoderSmall",
    "encoder_conf": {
        "output_size": 32,
        "attention_heads": 4,
        "linear_units": 64,
        "num_blocks": 2,
        "tp_blocks": 1,
        "dropout_rate": 0.1,
        "positional_dropout_rate": 0.1,
        "attention_dropout_rate": 0.1,
        "input_layer": "pe",
        "pos_enc_class": "SinusoidalPositionEncoder",
        "normalize_before": True,
        "kernel_size": 11,
        "sanm_shfit": 0,
        "selfattention_layer_type": "sanm",
    },
    "tokenizer": "SentencepiecesTokenizer",
    "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
    "frontend": "WavFrontend",
    "frontend_conf": {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
        "cmvn_file": None,
    },
}

_VAD_CONFIG = {
    "model": "FsmnVADStreaming",
    "model_conf": {
        "sample_rate": 16000,
        "detect_mode": 1,
        "snr_mode": 0,
        "max_end_silence_time": 800,
        "max_start_silence_time": 3000,
        "do_start_point_detection": True,
        "do_end_point_detection": True,
        "window_size_ms": 200,
        "sil_to_speech_time_thres": 150,
        "speech_to_sil_time_thres": 150,
        "speech_2_noise_ratio": 1.0,
        "do_extend": 1,
        "lookback_time_start_point": 200,
        "lookahead_time_end_point": 100,
        "max_single_segment_time": 60000,
        "snr_thres": -100.0,
        "noise_frame_num_used_for_snr": 100,
        # The published model leaves this at -100 and lets its trained network decide; the
        # untrained one here always says "speech", so frame energy makes the decision.
        "decibel_thres": -30.0,
        "speech_noise_thres": 0.6,
        "fe_prior_thres": 0.0001,
        "silence_pdf_num": 1,
        "sil_pdf_ids": [0],
        "speech_noise_thresh_low": -0.1,
        "speech_noise_thresh_high": 0.3,
        "output_frame_probs": False,
        "frame_in_ms": 10,
        "frame_length_ms": 25,
    },
    "encoder": "FSMN",
    "encoder_conf": {
        "input_dim": 400,
        "input_affine_dim": 16,
        "fsmn_layers": 2,
        "linear_dim": 16,
        "proj_dim": 8,
        "lorder": 4,
        "rorder": 0,
        "lstride": 1,
        "rstride": 0,
        "output_affine_dim": 16,
        "output_dim": 248,
    },
    "frontend": "WavFrontendOnline",
    "frontend_conf": {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "dither": 0.0,
        "lfr_m": 5,
        "lfr_n": 1,
    },
}


def _configuration_json(extra_metas: dict) -> dict:
    return {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": {"init_param": "model.pt", "config": "config.yaml", **extra_metas},
    }


def _write_cmvn(path: Path, dim: int, shift: float = -10.0, scale: float = 0.25) -> None:
    """A global mean/variance normalisation in the Kaldi nnet text format FunASR reads."""
    shifts = " ".join([f"{shift:g}"] * dim)
    scales = " ".join([f"{scale:g}"] * dim)
    path.write_text(
        "<Nnet>\n"
        f"<Splice> {dim} {dim}\n[ 0 ]\n"
        f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {shifts} ]\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {scales} ]\n"
        "</Nnet>\n"
    )


def _train_bpe(path: Path, corpus: Iterable[str]) -> None:
    import sentencepiece as spm

    lines = list(corpus)
    words = {w for line in lines for w in line.split()}
    chars = {c for w in words for c in w}
    # Room for every word as one piece, and at least MIN_VOCAB pieces in all.
    vocab = max(MIN_VOCAB, 4 + len(TAGS) + len(chars) + 2 * len(words))
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "corpus.txt"
        # Each word repeated on its own makes BPE merge it whole.
        text.write_text("\n".join(lines + sorted(words) * 4) + "\n")
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(Path(tmp) / "bpe"),
            model_type="bpe",
            vocab_size=vocab,
            user_defined_symbols=list(TAGS),
            add_dummy_prefix=False,
            hard_vocab_limit=False,
            character_coverage=1.0,
            bos_id=1,
            eos_id=2,
            unk_id=0,
            pad_id=-1,
            minloglevel=2,
        )
        path.write_bytes((Path(tmp) / "bpe.model").read_bytes())


def build_sensevoice(dest: Path, corpus: Iterable[str] = CORPUS, seed: int = 0) -> Path:
    """Write a tiny SenseVoiceSmall model directory at `dest`."""
    import sentencepiece as spm
    import torch
    from funasr.register import tables

    dest.mkdir(parents=True, exist_ok=True)
    _train_bpe(dest / BPE_FILE, corpus)
    _write_cmvn(dest / "am.mvn", 80 * 7)
    vocab_size = spm.SentencePieceProcessor(model_file=str(dest / BPE_FILE)).get_piece_size()
    config = _SENSEVOICE_CONFIG
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (dest / "configuration.json").write_text(
        json.dumps(
            _configuration_json(
                {"tokenizer_conf": {"bpemodel": BPE_FILE}, "frontend_conf": {"cmvn_file": "am.mvn"}}
            ),
            indent=2,
        )
    )
    torch.manual_seed(seed)
    model = tables.model_classes.get(config["model"])(
        encoder=config["encoder"],
        encoder_conf=config["encoder_conf"],
        input_size=80 * 7,
        vocab_size=vocab_size,
        **config["model_conf"],
    )
    torch.save(model.state_dict(), dest / "model.pt")
    return dest


def build_vad(dest: Path, seed: int = 0) -> Path:
    """Write a tiny fsmn-vad model directory at `dest` whose network always says "speech"."""
    import torch
    from funasr.register import tables

    dest.mkdir(parents=True, exist_ok=True)
    _write_cmvn(dest / "am.mvn", 80 * 5)
    config = _VAD_CONFIG
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (dest / "configuration.json").write_text(
        json.dumps(
            _configuration_json({"frontend_conf": {"cmvn_file": "am.mvn"}}),
            indent=2,
        )
    )
    torch.manual_seed(seed)
    model = tables.model_classes.get(config["model"])(
        encoder=config["encoder"], encoder_conf=config["encoder_conf"], **config["model_conf"]
    )
    state = model.state_dict()
    # The silence class (pdf 0) gets a low score whatever the input.
    state["encoder.out_linear2.linear.weight"].zero_()
    state["encoder.out_linear2.linear.bias"].zero_()
    state["encoder.out_linear2.linear.bias"][0] = -10.0
    torch.save(state, dest / "model.pt")
    return dest


def build_pair(dest: Path) -> tuple[Path, Path]:
    """Both directories under `dest`: (SenseVoiceSmall, fsmn-vad)."""
    return build_sensevoice(dest / "SenseVoiceSmall"), build_vad(dest / "fsmn-vad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    model_dir, vad_dir = build_pair(parser.parse_args().dest)
    print(f"AISTACK_SENSEVOICE_MODEL_DIR={model_dir}\nAISTACK_SENSEVOICE_VAD_DIR={vad_dir}")


if __name__ == "__main__":
    main()
