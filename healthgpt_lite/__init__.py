"""healthgpt_lite: HealthGPT (medical comprehension + generation in one LLM) built, trained and
measured piece by piece, from a 2-core CPU to GPU clusters. See README.md and notebooks/.

The package in the paper's order (docs/ARCHITECTURE.md is the full map):

    data/        VL-Health-lite: phantoms, records, the text tokenizer, converters of real data sets
    vision/      CLIP-lite and the HVP encoder (which ViT layer each task reads), the adapters
    vq/          the VQGAN image tokenizer (images <-> code grids)
    model/       LLM-lite, the extended vocabulary, the unified model, inference (HealthGPTLite)
    lora/        H-LoRA task plugins and their baselines (LoRA, MoELoRA)
    training/    the three-stage strategy as data, the stage module, data modules, the fit CLI
    eval/        metrics, baselines, benchmarks, reports
    pipelines/   `reproduce`: the end-to-end runs (HealthGPT, Qilin-Med-VL, ablations)
    artifacts/   how steps hand outputs on (config-hashed folders, atomic writes)
    course/      notebook runtime, papermill harness, the rendered book
    ablations/, bench/, scale/, released/, viz/, exercises/   experiments, speed, scale-up, the
                 released weights, figures, the graded exercises

    from healthgpt_lite import HealthGPTLite          # the trained model: answer(), generate_image()
"""
from .config import Config, build_config
from .errors import ConfigError, InputError

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "HealthGPTLite", "InputError", "build_config"]


def __getattr__(name: str):
    """``HealthGPTLite`` is imported on first use: it pulls in torch and transformers, which the
    command line and the config do not need."""
    if name == "HealthGPTLite":
        from .model.inference import HealthGPTLite

        return HealthGPTLite
    raise AttributeError(f"module 'healthgpt_lite' has no attribute {name!r}")
