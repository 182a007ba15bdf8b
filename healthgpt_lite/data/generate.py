"""Write VL-Health-lite to disk: images, LLaVA JSON per split, ground truth, metadata.

    DATA_DIR/
      meta.json              how it was made (generator version, sizes, seed, splits)
      patients.json          ground truth: every patient's anatomy and lesions
      train.json val.json test.json   LLaVA-format records, split *by patient* (no leakage)
      images/p00000_ct.png   8-bit grayscale; *_lr.png are the 4x low-resolution inputs

Deterministic: the same arguments give byte-identical files (tests check the committed
``data_samples/`` this way).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DataConfig
from .phantoms import FOV_MM, MODALITIES, downsample, make_patient, render, to_uint8
from .records import image_name, patient_records

GENERATOR_VERSION = 2  # 2: CT soft tissues within a few grey levels (phantoms.SLICE_CONTRAST)
SPLITS = ("train", "val", "test")


def split_of_patients(n_patients: int, val_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """The split of every patient index; a seeded permutation so splits do not depend on order."""
    order = np.random.default_rng([seed, 10_007]).permutation(n_patients)
    n_test = max(1, round(n_patients * test_fraction))
    n_val = max(1, round(n_patients * val_fraction))
    split = ["train"] * n_patients
    for rank, idx in enumerate(order):
        split[idx] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return split


def _save_png(img: np.ndarray, path: Path) -> None:
    Image.fromarray(to_uint8(img), mode="L").save(path, optimize=False, compress_level=9)


def generate_dataset(out_dir: str | Path, cfg: DataConfig | None = None, progress: bool = False) -> Path:
    """Render ``cfg.n_patients`` patients into ``out_dir``; returns the directory."""
    cfg = cfg or DataConfig()
    if cfg.n_patients < 3:
        raise ValueError(f"data.n_patients={cfg.n_patients}: need at least 3 patients (one per split)")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    splits = split_of_patients(cfg.n_patients, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    records: dict[str, list[dict]] = {s: [] for s in SPLITS}
    patients = []
    indices = range(cfg.n_patients)
    if progress:
        from tqdm.auto import tqdm
        indices = tqdm(indices, desc="patients")
    for i in indices:
        p = make_patient(i, cfg.seed)
        for m in MODALITIES:
            img = render(p, m, cfg.image_size)
            _save_png(img, out / image_name(p, m))
            if m != "xray":  # super-resolution inputs: the same slice acquired at 1/f resolution
                _save_png(downsample(img, cfg.sr_factor), out / image_name(p, m, low_res=True))
        records[splits[i]] += patient_records(p, splits[i], cfg.languages, cfg.sr_factor, cfg.seed)
        patients.append({**p.to_dict(), "split": splits[i]})
    for s in SPLITS:
        _write_json(out / f"{s}.json", records[s])
    _write_json(out / "patients.json", patients)
    meta = {"generator_version": GENERATOR_VERSION, "fov_mm": FOV_MM, "modalities": list(MODALITIES),
            "n_records": {s: len(records[s]) for s in SPLITS},
            "n_patients": {s: splits.count(s) for s in SPLITS}, "config": _data_config_dict(cfg)}
    _write_json(out / "meta.json", meta)
    return out


def _data_config_dict(cfg: DataConfig) -> dict:
    from dataclasses import asdict
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def dataset_matches(data_dir: str | Path, cfg: DataConfig) -> bool:
    """True when ``data_dir`` holds a complete data set made with exactly ``cfg``."""
    meta = Path(data_dir) / "meta.json"
    if not meta.is_file():
        return False
    try:
        m = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return m.get("generator_version") == GENERATOR_VERSION and m.get("config") == _data_config_dict(cfg)


def ensure_dataset(data_dir: str | Path, cfg: DataConfig, progress: bool = False) -> Path:
    """Load-or-generate: reuse ``data_dir`` when it was made with ``cfg``, else (re)generate."""
    if not dataset_matches(data_dir, cfg):
        generate_dataset(data_dir, cfg, progress=progress)
    return Path(data_dir)
