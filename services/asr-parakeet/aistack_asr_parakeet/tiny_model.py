"""Build a tiny Parakeet TDT model with random weights, for tests and smoke checks.

Same architecture and on-disk format as nvidia/parakeet-tdt-0.6b-v3 (an
`EncDecRNNTBPEModel`: FastConformer encoder, TDT decoder and joint, SentencePiece
tokenizer, saved as a `.nemo` file), shrunk to about 700 KB. Its words are
meaningless; its loading, timestamps and long-audio modes are the real ones.

    python -m aistack_asr_parakeet.tiny_model OUT.nemo
"""

import argparse
import tempfile
from pathlib import Path
from typing import Any

# Enough text for a small BPE vocabulary that spells words of several of Parakeet's languages.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "It was a sunny day in the park, and the children played.",
    "Hello world, this is a test of speech recognition.",
    "Bonjour tout le monde, comment allez-vous?",
    "Guten Tag, wie geht es Ihnen heute?",
    "Buenos días, ¿cómo estás? Muy bien, gracias.",
    "Buongiorno, come stai oggi?",
    "Dzień dobry, jak się masz?",
]
DURATIONS = [0, 1, 2, 3, 4]


def model_config(tokenizer_dir: Path, d_model: int = 32) -> dict[str, Any]:
    """parakeet-tdt-0.6b-v3's model config, shrunk: same modules, tiny sizes."""
    no_data = {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 1}
    return {
        "sample_rate": 16000,
        "model_defaults": {
            "enc_hidden": d_model,
            "pred_hidden": d_model,
            "joint_hidden": d_model,
            "tdt_durations": DURATIONS,
            "num_tdt_durations": len(DURATIONS),
        },
        "train_ds": {**no_data, "shuffle": True},
        "validation_ds": {**no_data, "shuffle": False},
        "test_ds": {**no_data, "shuffle": False},
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": 128,
            "n_fft": 512,
            "log": True,
            "frame_splicing": 1,
            "dither": 1e-5,
            "pad_to": 0,
            "pad_value": 0.0,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 128,
            "feat_out": -1,
            "n_layers": 2,
            "d_model": d_model,
            "subsampling": "dw_striding",
            "subsampling_factor": 8,
            "subsampling_conv_channels": d_model,
            "causal_downsampling": False,
            "ff_expansion_factor": 2,
            "self_attention_model": "rel_pos",
            "n_heads": 4,
            "att_context_size": [-1, -1],
            "xscaling": True,
            "untie_biases": True,
            "pos_emb_max_len": 5000,
            "conv_kernel_size": 9,
            "conv_norm_type": "batch_norm",
            "dropout": 0.0,
            "dropout_pre_encoder": 0.0,
            "dropout_emb": 0.0,
            "dropout_att": 0.0,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "normalization_mode": None,
            "random_state_sampling": False,
            "blank_as_pad": True,
            "prednet": {"pred_hidden": d_model, "pred_rnn_layers": 1, "dropout": 0.0},
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "log_softmax": None,
            "preserve_memory": False,
            "fuse_loss_wer": False,
            "jointnet": {
                "joint_hidden": d_model,
                "activation": "relu",
                "dropout": 0.0,
            },
            "num_extra_outputs": len(DURATIONS),
        },
        "decoding": {
            "strategy": "greedy_batch",
            "model_type": "tdt",
            "durations": DURATIONS,
            "greedy": {"max_symbols": 10},
        },
        "loss": {
            "loss_name": "tdt",
            "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02, "omega": 0.1},
        },
    }


def train_tokenizer(out_dir: Path, vocab_size: int = 96) -> Path:
    """A BPE SentencePiece tokenizer in the directory layout NeMo reads."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        minloglevel=2,
    )
    pieces = [
        line.split("\t")[0] for line in (out_dir / "tokenizer.vocab").read_text().splitlines()
    ]
    (out_dir / "vocab.txt").write_text("\n".join(pieces) + "\n")
    return out_dir


def build(out: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight Parakeet TDT `.nemo` file to `out`."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = train_tokenizer(Path(tmp) / "tokenizer")
        model = EncDecRNNTBPEModel(cfg=OmegaConf.create(model_config(tokenizer_dir)))
        model.save_to(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the .nemo file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build(args.out, args.seed)


if __name__ == "__main__":
    main()
