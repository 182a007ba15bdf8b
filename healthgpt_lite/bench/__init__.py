"""Benchmarks: ``python -m healthgpt_lite bench <name>`` (hlora: LoRA vs MoELoRA vs H-LoRA)."""
