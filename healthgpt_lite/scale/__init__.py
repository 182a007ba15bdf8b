"""From laptop to cluster: the real-size presets planned on the ``meta`` device (parameters
per stage, memory per GPU, tokens per sample), and the helpers that dry-run the full-run
configs here (``configs/m3_*.yaml``, ``configs/l14_*.yaml``)."""
from .meta import BASE_VOCABULARIES, MetaBuild, PlannedVocabulary, build_meta_model

__all__ = ["BASE_VOCABULARIES", "MetaBuild", "PlannedVocabulary", "build_meta_model"]
