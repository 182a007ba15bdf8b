"""Stand-ins for the downloads, so the full-run path runs end to end on a laptop.

* :func:`write_stand_in_weights`: random weights with the shapes of a config, saved in exactly
  the layouts of the real downloads (a CLIP ``save_pretrained`` folder, a Phi-3 folder, a taming
  VQGAN checkpoint as safetensors). The run then takes the real-weights path (``*.pretrained_path``)
  with the ``tiny`` shapes: every loader, shape check and the LightningCLI wiring are exercised.
* :func:`write_benchmark_source`: a few questions about virtual patients, written in the *source*
  format of VQA-RAD, SLAKE or PathVQA (their field names, a JPEG per image), for the converter.
* :func:`write_generation_records`: CT -> MRI pairs as LLaVA JSON with ``target_image``.

Nothing here is a model or a data set to learn from: the weights are random and the files tiny.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from ..config import Config
from ..data.phantoms import make_patient, render, to_uint8


def write_stand_in_weights(cfg: Config, root: str | Path, seed: int = 0) -> dict[str, str]:
    """Random CLIP ViT, Phi3 LLM and VQGAN of ``cfg``'s shapes in the real layouts under ``root``;
    returns the overrides that point a config at them."""
    from safetensors.torch import save_file

    from ..data.text_tokenizer import image_token_ids, tokenizer_for
    from ..model.llm import build_llm
    from ..vision import build_clip_vision
    from ..vq.vqgan import VQGAN

    root = Path(root)
    build_clip_vision(cfg.vision, seed=seed).save_pretrained(root / "clip", safe_serialization=True)
    tok = tokenizer_for(cfg)
    torch.manual_seed(seed)
    llm = build_llm(cfg.llm, image_token_ids(tok).start, pad_token_id=tok.pad_token_id)  # text rows only
    llm.save_pretrained(root / "phi3", safe_serialization=True)
    vq = VQGAN(cfg.vq)
    ours = {f"quantize.{s}" for s in vq.quantize.STATISTICS}  # training statistics taming does not save
    save_file({k: v.contiguous() for k, v in vq.state_dict().items() if k not in ours}, root / "vqgan.safetensors")
    return {"vision.pretrained_path": str(root / "clip"), "llm.pretrained_path": str(root / "phi3"),
            "vq.pretrained_path": str(root / "vqgan.safetensors")}


def _save_scan(patient_index: int, modality: str, path: Path, size: int = 96) -> bool:
    """Render a virtual patient's scan as an 8-bit JPEG/PNG; returns whether it has lesions."""
    p = make_patient(patient_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(render(p, modality, size))).save(path)
    return bool(p.lesions)


def write_benchmark_source(root: str | Path, fmt: str, n_patients: int = 4) -> tuple[Path, Path]:
    """Two questions per patient (closed yes/no, open count) in ``fmt``'s own source layout.
    Returns (source file, image root)."""
    root = Path(root)
    rows = []
    for i in range(n_patients):
        name = {"vqa-rad": f"synpic{1000 + i}.jpg", "slake": f"xmlab{i}/source.jpg", "pathvqa": f"test/test_{i:04d}.jpg"}[fmt]
        has_lesion = _save_scan(i, "ct", root / "images" / name)
        count = len(make_patient(i).lesions)
        qa = [("Is there a lesion in this image?", "Yes" if has_lesion else "No", "CLOSED"),
              ("How many lesions are there?", count, "OPEN")]
        for j, (question, answer, kind) in enumerate(qa):
            qid = 2 * i + j
            if fmt == "vqa-rad":  # the public file's columns; every other patient in the test split
                rows.append({"qid": qid, "phrase_type": "test_freeform" if i % 2 else "freeform",
                             "qid_linked_id": f"stand-in-{qid}", "image_case_url": f"https://medpix.example/case?id={i}",
                             "image_name": name, "image_organ": "CHEST", "evaluation": "not evaluated",
                             "question": question, "question_rephrase": "NULL", "question_relation": "NULL",
                             "question_frame": "NULL", "question_type": "PRES", "answer": answer, "answer_type": kind})
            elif fmt == "slake":
                rows.append({"img_id": i, "img_name": name, "question": question, "answer": str(answer),
                             "q_lang": "en", "location": "Chest", "modality": "CT", "answer_type": kind,
                             "base_type": "vqa", "content_type": "Abnormality", "qid": qid})
            else:  # PathVQA exported as JSON lines, no answer type
                rows.append({"image": name, "question": question, "answer": str(answer).lower()})
    src = root / {"vqa-rad": "VQA_RAD Dataset Public.json", "slake": "test.json", "pathvqa": "test.jsonl"}[fmt]
    text = "".join(json.dumps(r) + "\n" for r in rows) if fmt == "pathvqa" else json.dumps(rows, indent=1)
    src.write_text(text, encoding="utf-8")
    return src, root / "images"


def write_generation_records(root: str | Path, n_patients: int = 4) -> Path:
    """CT -> MRI records (LLaVA JSON with ``target_image``) and their images under ``root/images``."""
    root, records = Path(root), []
    for i in range(n_patients):
        for modality in ("ct", "mri"):
            _save_scan(i, modality, root / "images" / f"gen/p{i}_{modality}.png")
        records.append({"id": f"p{i}_ct2mri", "image": f"gen/p{i}_ct.png", "target_image": f"gen/p{i}_mri.png",
                        "conversations": [{"from": "human", "value": "<image>\nConvert this CT image into an MRI image."},
                                          {"from": "gpt", "value": "<target_image>"}]})
    path = root / "generation.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path
