"""The released HealthGPT weights (HealthGPT-M3 and -L14), run by this project's code.

The authors released H-LoRA files, not a model: ``com_hlora_weights.bin`` (comprehension),
``gen_hlora_weights.bin`` (generation) and ``fusion_layer_weights.bin`` (the stage-2 embeddings and
head) for M3 on Phi-3-mini, ``com_hlora_weights_phi4.bin`` for L14 on phi-4, each on top of CLIP
ViT-L/14-336 and, for images, the taming VQGAN f8-8192. Here they become a
:class:`ReleasedHealthGPT` with the released model's token ids, chat template and image
preprocessing:

* ``convert.py``: the files' upstream names -> this project's parameters, strictly (every key lands, shapes match);
* ``prompt.py``: the released vocabulary (``<image>`` = -200, image tokens from ``len(tokenizer)``), templates, prompt ids;
* ``preprocess.py``: pad to a square with CLIP's mean colour, then CLIP's own image processor;
* ``model.py``: the model, built from the folders and files;
* ``stand_ins.py``: tiny files in exactly these layouts, for tests and notebook 12.

    python -m healthgpt_lite answer scan.png "What modality is this?" --llm Phi-3-mini-4k-instruct \\
        --clip clip-vit-large-patch14-336 --hlora com_hlora_weights.bin
"""
from .model import ReleasedHealthGPT, ReleasedModel
from .prompt import IMAGE_TOKEN_INDEX, TEMPLATES, released_tokenizer

__all__ = ["IMAGE_TOKEN_INDEX", "ReleasedHealthGPT", "ReleasedModel", "TEMPLATES", "released_tokenizer"]
