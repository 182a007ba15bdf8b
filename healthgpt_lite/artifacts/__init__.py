"""Artifacts: how one step hands its outputs to the next (``store.py``).

Every trained piece (data set, CLIP-lite, VQGAN, LLM-lite, each stage) is saved under
``ARTIFACTS_DIR/<name>-<config hash>/`` with a ``meta.json``, written atomically, and loaded
when present for the same config (*load if present, else make*). The pipelines
(``pipelines/``), the stage runner (``training/pipeline.py``) and the fit CLI use it.
"""
from .store import (REPO_ROOT, artifact_dir, atomic_save_safetensors, atomic_write_bytes, atomic_write_json,
                    data_dir_for, default_artifacts_dir, is_complete, is_writer, load_or_make, read_meta,
                    read_safetensors, read_torch_weights, wait_for_writer, write_meta)

__all__ = ["REPO_ROOT", "artifact_dir", "atomic_save_safetensors", "atomic_write_bytes", "atomic_write_json",
           "data_dir_for", "default_artifacts_dir", "is_complete", "is_writer", "load_or_make", "read_meta",
           "read_safetensors", "read_torch_weights", "wait_for_writer", "write_meta"]
