"""The committed sample: ``data_samples/`` (a few patients + the tokenizer), made by
``make data-samples`` (= ``python -m healthgpt_lite data sample --out data_samples``).

Tests regenerate it into a temporary folder and compare byte for byte, so the generator
cannot drift silently from what students browse.
"""
from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from .generate import generate_dataset
from .phantoms import make_patient
from .records import patient_records
from .text_tokenizer import corpus_from_records, train_tokenizer

SAMPLE_PATIENTS = 12  # browsable sample: 12 patients at 64 px
TOKENIZER_PATIENTS = 400  # text of 400 patients covers every template, number and word
TOKENIZER_VOCAB = 1024  # BPE vocabulary (before special and image tokens)
TOKENIZER_CODES = 512  # <idx_*> tokens = the tiny preset's VQ codebook size


def tokenizer_corpus(n_patients: int = TOKENIZER_PATIENTS, seed: int = 0):
    cfg = DataConfig()
    for i in range(n_patients):
        yield from corpus_from_records(patient_records(make_patient(i, seed), "train", cfg.languages, cfg.sr_factor, seed))


def build_tokenizer(out_dir: str | Path, n_codes: int = TOKENIZER_CODES, vocab_size: int = TOKENIZER_VOCAB) -> Path:
    tok = train_tokenizer(tokenizer_corpus(), vocab_size=vocab_size, n_codes=n_codes)
    tok.save_pretrained(str(out_dir))
    return Path(out_dir)


def build_samples(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    generate_dataset(out / "vl_health_lite", DataConfig(n_patients=SAMPLE_PATIENTS))
    build_tokenizer(out / "tokenizer")
    return out
