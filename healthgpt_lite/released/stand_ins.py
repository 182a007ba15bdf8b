"""Tiny stand-ins for the HealthGPT downloads, in exactly the released layouts, so the
released-weights path runs end to end with nothing downloaded (tests, notebook 12).

    paths = write_released_stand_ins(root, llm="phi3")   # or "phi4" (L14: comprehension only, as released)
    ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], {"comprehension": paths["com"]},
                                 overrides=paths["overrides"])

What is written (random weights, tiny shapes, real names and layouts):

* ``Phi-3-mini-4k-instruct/`` (or ``phi-4/``): a Phi3 ``save_pretrained`` folder whose tokenizer
  has the base model's special tokens (Phi-3: ``<s>`` added at the start, ``<|system|> <|user|>
  <|assistant|> <|end|>``; phi-4: ``<|im_start|> <|im_sep|> <|im_end|>``, no BOS), more embedding
  rows than tokenizer entries (as Phi-3's 32064 vs 32011), and the generation config's EOS ids;
* ``clip-vit-large-patch14-336/``: a CLIP vision folder with its ``preprocessor_config.json``;
* ``vqgan/last.ckpt``: a taming checkpoint ``{"state_dict": ..., "global_step": ...}`` with its
  training loss weights (``loss.*``), read with ``torch.load(weights_only=True)``;
* ``com_hlora_weights.bin`` / ``gen_hlora_weights.bin`` / ``fusion_layer_weights.bin``
  (``com_hlora_weights_phi4.bin``): ``torch.save`` of fp16 state dicts under the upstream peft
  names, every shape derived here from the Phi3 and LLaVA layouts (not from this project's model).
"""
from __future__ import annotations

from pathlib import Path

import torch

# tiny shapes of the stand-ins (phi-4's grouped-query attention kept: fewer KV heads than heads)
LLM = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
       "intermediate_size": 48, "max_position_embeddings": 512}
VISION = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
          "intermediate_size": 64}
VQ = {"vq.resolution": 16, "vq.ch": 32, "vq.ch_mult": [1, 2], "vq.num_res_blocks": 1, "vq.attn_resolutions": [8],
      "vq.z_channels": 8, "vq.embed_dim": 8, "vq.n_embed": 16, "vq.quantizer": "gumbel"}
PLUGINS = {"comprehension": (8, 4), "generation": (16, 4)}  # (r*k, k), as 64/4 and 256/4 released for M3
SPECIALS = {"phi3": {"bos": "<s>", "eos": "<|endoftext|>", "pad": "<|endoftext|>",
                     "chat": ["<|assistant|>", "<|system|>", "<|end|>", "<|user|>"], "stop": ["<|endoftext|>", "<|assistant|>", "<|end|>"]},
            "phi4": {"bos": None, "eos": "<|endoftext|>", "pad": "<|dummy_85|>",
                     "chat": ["<|im_start|>", "<|im_end|>", "<|im_sep|>"], "stop": ["<|im_end|>"]}}
PADDING_ROWS = 5  # embedding rows beyond the tokenizer (Phi-3-mini: 32064 rows, 32011 entries)
CORPUS = ["Is there a lesion in this image?", "What modality is used to take this image?", "Reconstruct the image.",
          "You are a helpful AI assistant.", "Yes", "No", "CT", "MRI", "The liver looks normal.", "Convert this CT into MRI."]


def write_released_stand_ins(root: str | Path, llm: str = "phi3", seed: int = 0) -> dict:
    """Write the stand-ins under ``root``; returns their paths and the VQ ``overrides``."""
    from ..model.llm import no_progress_bars

    root = Path(root)
    torch.manual_seed(seed)
    with no_progress_bars():
        tok, llm_dir = _write_llm(root, llm)
        clip_dir = _write_clip(root / "clip-vit-large-patch14-336")
    paths = {"llm": llm_dir, "clip": clip_dir, "vqgan": _write_vqgan(root / "vqgan" / "last.ckpt"),
             "overrides": dict(VQ), "tokenizer_entries": len(tok)}
    plugins = ["comprehension"] if llm == "phi4" else ["comprehension", "generation"]  # as released
    names = {"comprehension": "com_hlora_weights_phi4.bin" if llm == "phi4" else "com_hlora_weights.bin",
             "generation": "gen_hlora_weights.bin"}
    for task in plugins:
        paths[task[:3]] = root / names[task]
        torch.save(_half(hlora_state(*PLUGINS[task])), paths[task[:3]])
    if llm == "phi3":
        rows = len(tok) + VQ["vq.n_embed"] + 3  # + <start_index>, <idx_*>..., <end_index>, <pixel_newline>
        paths["fusion"] = root / "fusion_layer_weights.bin"
        torch.save(_half({"base_model.model.model.embed_tokens.weight": torch.randn(rows, LLM["hidden_size"]) * 0.1,
                          "base_model.model.lm_head.weight": torch.randn(rows, LLM["hidden_size"]) * 0.1}), paths["fusion"])
    return paths


def hlora_state(rank: int, experts: int) -> dict[str, torch.Tensor]:
    """An upstream H-LoRA file: lora_A / lora_B / lora_route of every Phi3 linear layer but the head,
    and the mlp2x_gelu projector, under the peft wrapper's names."""
    h, inter = LLM["hidden_size"], LLM["intermediate_size"]
    head_dim = h // LLM["num_attention_heads"]
    linears = {"self_attn.qkv_proj": (h, h + 2 * LLM["num_key_value_heads"] * head_dim), "self_attn.o_proj": (h, h),
               "mlp.gate_up_proj": (h, 2 * inter), "mlp.down_proj": (inter, h)}  # (d_in, d_out)
    state = {}
    for layer in range(LLM["num_hidden_layers"]):
        for name, (d_in, d_out) in linears.items():
            key = f"base_model.model.model.layers.{layer}.{name}"
            state[f"{key}.lora_A.weight"] = torch.randn(rank, d_in) / d_in ** 0.5
            state[f"{key}.lora_B.weight"] = torch.randn(d_out, rank) * 0.05  # non-zero: the plugin must matter
            state[f"{key}.lora_route.weight"] = torch.randn(experts, d_in)
    v = VISION["hidden_size"]
    for i, (d_in, d_out) in {0: (v, h), 2: (h, h)}.items():
        state[f"base_model.model.model.mm_projector.{i}.weight"] = torch.randn(d_out, d_in) / d_in ** 0.5
        state[f"base_model.model.model.mm_projector.{i}.bias"] = torch.randn(d_out) * 0.01
    return state


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() for k, v in state.items()}  # the released files are half precision


def _write_llm(root: Path, llm: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GenerationConfig, Phi3Config, Phi3ForCausalLM, PreTrainedTokenizerFast

    if llm not in SPECIALS:
        raise ValueError(f"llm={llm!r}: choose phi3 or phi4")
    sp = SPECIALS[llm]
    specials = [t for t in dict.fromkeys([sp["bos"], sp["eos"], sp["pad"], *sp["chat"]]) if t]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if sp["bos"]:  # Phi-3's tokenizer starts every call with <s>
        bpe.post_processor = processors.TemplateProcessing(single=f"{sp['bos']} $A", special_tokens=[
            (sp["bos"], bpe.token_to_id(sp["bos"]))])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=sp["bos"], eos_token=sp["eos"], pad_token=sp["pad"])
    folder = root / ("phi-4" if llm == "phi4" else "Phi-3-mini-4k-instruct")
    tok.save_pretrained(folder)
    config = Phi3Config(vocab_size=len(tok) + PADDING_ROWS, tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **LLM)
    model = Phi3ForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
                                               eos_token_id=[tok.convert_tokens_to_ids(t) for t in sp["stop"]])
    model.save_pretrained(folder, safe_serialization=True)
    return tok, folder


def _write_clip(folder: Path) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    CLIPVisionModel(CLIPVisionConfig(projection_dim=32, hidden_act="quick_gelu", **VISION)).save_pretrained(
        folder, safe_serialization=True)
    side = VISION["image_size"]
    CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}).save_pretrained(folder)
    return folder


def _write_vqgan(path: Path) -> Path:
    from ..config import build_config
    from ..vq.vqgan import VQGAN

    vq = VQGAN(build_config("tiny", "smoke", VQ).vq)
    ours = {f"quantize.{s}" for s in vq.quantize.STATISTICS}  # our training statistics; taming has none
    state = {k: v for k, v in vq.state_dict().items() if k not in ours}
    state["loss.discriminator.main.0.weight"] = torch.zeros(4, 3, 4, 4)  # taming keeps its GAN loss in the file
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "global_step": 0, "epoch": 0}, path)
    return path
