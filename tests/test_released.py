"""The released HealthGPT weights: stand-in files in exactly the released layouts (written by
``released/stand_ins.py`` from the Phi3 and LLaVA layouts, not from our model) are loaded
strictly, and the model answers with the released model's ids, template, preprocessing and
numbers: an independent re-implementation of the released code path (its H-LoRA layer, its
peft names, its ``tokenizer_image_token``, its mean-colour padding and CLIP processor, its splice)
is written in this file and must give the same logits."""
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from healthgpt_lite.cli import main as cli_main
from healthgpt_lite.data.text_tokenizer import add_healthgpt_tokens, image_token_names
from healthgpt_lite.errors import InputError
from healthgpt_lite.released import IMAGE_TOKEN_INDEX, ReleasedHealthGPT
from healthgpt_lite.released.convert import ReleasedFile, load_released, project_name
from healthgpt_lite.released.stand_ins import PLUGINS, write_released_stand_ins

PHI3_PROMPT = "<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n<image>\n{q}<|end|>\n<|assistant|>\n"
PHI4_PROMPT = ("<|im_start|>system<|im_sep|>\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user<|im_sep|>\n"
               "<image>\n{q}<|im_end|>\n<|im_start|>assistant<|im_sep|>\n")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    scan = root / "scan.png"  # not square: the padding colour matters
    Image.fromarray((np.random.default_rng(0).random((40, 64, 3)) * 255).astype(np.uint8)).save(scan)
    return {"m3": write_released_stand_ins(root / "m3", "phi3"), "l14": write_released_stand_ins(root / "l14", "phi4"),
            "scan": scan, "root": root}


def released(paths, task="comprehension", **kw):
    files = {task: paths["com" if task == "comprehension" else "gen"]}
    extra = {"fusion": paths["fusion"], "vqgan": paths["vqgan"]} if task == "generation" else {}
    return ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], files, overrides=paths["overrides"], **extra, **kw)


# ----------------------------------------------------------------------------- the released code path, re-implemented
class UpstreamHLoRA(nn.Linear):
    """The released layer as published: lora_A / lora_B / lora_route, scaling = alpha / r * k."""

    def __init__(self, base: nn.Linear, r: int, k: int, alpha: float):
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None)
        self.weight, self.bias = base.weight, base.bias
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.lora_route = nn.Linear(base.in_features, k, bias=False)
        self.scaling, self.times = alpha / r * k, r // k

    def forward(self, x):
        route = F.softmax(self.lora_route(x), dim=-1).repeat_interleave(self.times, dim=-1)
        return F.linear(x, self.weight, self.bias) + self.lora_B(route * (self.lora_A(x) * self.scaling))


def upstream_model(paths, weights: list, r: int, k: int):
    from transformers import AutoTokenizer, CLIPVisionModel, Phi3ForCausalLM

    tok = AutoTokenizer.from_pretrained(str(paths["llm"]))
    added = tok.add_tokens(image_token_names(paths["overrides"]["vq.n_embed"]), special_tokens=True)
    llava = Phi3ForCausalLM.from_pretrained(str(paths["llm"]), dtype=torch.float32)
    llava.resize_token_embeddings(len(tok), mean_resizing=False)
    with torch.no_grad():
        for w in (llava.get_input_embeddings().weight, llava.get_output_embeddings().weight):
            w[-added:] = w[:-added].mean(0, keepdim=True)  # the released resize: new rows = mean of the others
    for name, m in list(llava.named_modules()):
        if isinstance(m, nn.Linear) and not name.endswith("lm_head"):
            parent, _, child = name.rpartition(".")
            setattr(llava.get_submodule(parent), child, UpstreamHLoRA(m, r, k, alpha=2 * r))
    h, v = llava.config.hidden_size, CLIPVisionModel.config_class.from_pretrained(str(paths["clip"])).hidden_size
    llava.model.mm_projector = nn.Sequential(nn.Linear(v, h), nn.GELU(), nn.Linear(h, h))
    peft = nn.Module()  # the peft wrapper: keys start with base_model.model.
    peft.base_model = nn.Module()
    peft.base_model.model = llava
    for path in weights:
        unexpected = peft.load_state_dict(torch.load(path, weights_only=True), strict=False).unexpected_keys
        assert not unexpected
    return tok, llava.eval(), CLIPVisionModel.from_pretrained(str(paths["clip"])).eval()


def upstream_ids(tok, prompt: str) -> list[int]:
    """LLaVA's tokenizer_image_token, from its description: pieces, BOS once, -200 between."""
    pieces = [tok(p).input_ids for p in prompt.split("<image>")]
    offset = int(bool(pieces[0]) and pieces[0][0] == tok.bos_token_id)
    ids = pieces[0][:1] if offset else []
    for i, piece in enumerate(pieces):
        ids += ([IMAGE_TOKEN_INDEX] if i else []) + piece[offset:]
    return ids


def upstream_logits(tok, llava, vit, prompt, image_path, layer) -> torch.Tensor:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil.from_pretrained(str(vit.name_or_path))
    img = Image.open(image_path).convert("RGB")
    w, h = img.size
    square = Image.new("RGB", (max(w, h),) * 2, tuple(int(x * 255) for x in processor.image_mean))
    square.paste(img, ((max(w, h) - w) // 2, (max(w, h) - h) // 2))
    pixels = processor(images=square, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        feats = llava.model.mm_projector(vit(pixels, output_hidden_states=True).hidden_states[layer][:, 1:])[0]
        ids = torch.tensor(upstream_ids(tok, prompt))
        at = int((ids == IMAGE_TOKEN_INDEX).nonzero())
        emb = llava.get_input_embeddings()
        embeds = torch.cat([emb(ids[:at]), feats, emb(ids[at + 1:])])[None]
        return llava(inputs_embeds=embeds).logits[0, -1]


def our_logits(gpt, question, image_path, generation=False) -> torch.Tensor:
    ids = gpt.prompt_ids(question, True, generation)
    with torch.no_grad():
        return gpt.model(input_ids=ids[None], pixels=gpt.pixels([image_path])).logits[0, -1]


# ----------------------------------------------------------------------------- tests
def test_upstream_names_map_to_the_project_parameters():
    cases = {"base_model.model.model.layers.3.self_attn.qkv_proj.lora_A.weight":
             "llm.model.layers.3.self_attn.qkv_proj.plugins.comprehension.A.weight",
             "base_model.model.model.layers.3.mlp.down_proj.lora_route.weight":
             "llm.model.layers.3.mlp.down_proj.plugins.comprehension.router.weight",
             "base_model.model.model.mm_projector.2.bias": "adapters.comprehension.2.bias",
             "base_model.model.model.embed_tokens.weight": "llm.model.embed_tokens.weight",
             "base_model.model.lm_head.weight": "llm.lm_head.weight",
             "model.layers.0.mlp.gate_up_proj.lora_B.weight": "llm.model.layers.0.mlp.gate_up_proj.plugins.comprehension.B.weight"}
    for upstream, ours in cases.items():
        assert project_name(upstream, "comprehension") == ours


@pytest.mark.parametrize("preset, prompt", [("m3", PHI3_PROMPT), ("l14", PHI4_PROMPT)])
def test_answers_have_the_released_ids_and_logits(downloads, preset, prompt):
    paths = downloads[preset]
    gpt = released(paths)
    tok, llava, vit = upstream_model(paths, [paths["com"]], *PLUGINS["comprehension"])
    q = "Is there a lesion?"
    ours = gpt.prompt_ids(q, True).tolist()
    n = gpt.cfg.vision.num_tokens
    at = ours.index(IMAGE_TOKEN_INDEX)
    assert ours[at:at + n] == [IMAGE_TOKEN_INDEX] * n  # the one <image> of LLaVA, as n slots
    assert ours[:at + 1] + ours[at + n:] == upstream_ids(tok, prompt.format(q=q))
    torch.testing.assert_close(our_logits(gpt, q, downloads["scan"]),
                               upstream_logits(tok, llava, vit, prompt.format(q=q), downloads["scan"], -2),
                               atol=1e-4, rtol=1e-4)
    assert "knight" not in gpt.template.prompt(q, True)  # L14's role-play system line is not copied


def test_generation_has_the_released_logits_after_start_index(downloads):
    paths = downloads["m3"]
    gpt = released(paths, "generation")
    tok, llava, vit = upstream_model(paths, [paths["gen"], paths["fusion"]], *PLUGINS["generation"])
    q = "Reconstruct the image."
    prompt = PHI3_PROMPT.format(q=q) + "<start_index>"
    torch.testing.assert_close(our_logits(gpt, q, downloads["scan"], generation=True),
                               upstream_logits(tok, llava, vit, prompt, downloads["scan"], 1), atol=1e-4, rtol=1e-4)
    image = gpt.generate_image(q, image=downloads["scan"])  # constrained: always exactly h*w image tokens
    assert image.mode == "RGB" and image.size == (16, 16)


def test_vocabulary_sits_one_place_earlier_than_this_projects(downloads):
    paths = downloads["m3"]
    gpt = released(paths)
    entries, n_codes = paths["tokenizer_entries"], paths["overrides"]["vq.n_embed"]
    assert gpt.model.block.start == entries and gpt.model.block.first_idx == entries + 1
    assert gpt.model.llm.get_input_embeddings().weight.shape[0] == entries + n_codes + 3  # M3: 32011 + 8195
    assert "<image>" not in gpt.tokenizer.get_vocab()
    from transformers import AutoTokenizer

    ours = add_healthgpt_tokens(AutoTokenizer.from_pretrained(str(paths["llm"])), n_codes)
    assert ours.convert_tokens_to_ids("<start_index>") == entries + 1  # <image> first, then the block


def test_preprocessing_pads_with_the_clip_mean_colour(downloads):
    gpt = released(downloads["m3"])
    wide = Image.new("RGB", (64, 16), (255, 255, 255))
    pixels = gpt.pixels([wide])[0]  # (3, 32, 32) in [0, 1], not yet normalised
    assert pixels.shape == (3, 32, 32)
    top = pixels[:, 0, 16]  # above the image: the padding
    assert torch.allclose(top * 255, torch.tensor([122.0, 116.0, 104.0]), atol=1.5)
    assert torch.allclose(pixels[:, 16, 16], torch.ones(3))


def test_unmatched_missing_and_misshaped_keys_are_all_reported(downloads, tmp_path):
    paths = downloads["m3"]
    state = torch.load(paths["com"], weights_only=True)
    state["base_model.model.model.layers.0.self_attn.qkv_proj.lora_C.weight"] = torch.zeros(2, 2)
    for layer in (0, 1):
        del state[f"base_model.model.model.layers.{layer}.mlp.down_proj.lora_B.weight"]
    state["base_model.model.model.mm_projector.0.bias"] = torch.zeros(7)
    bad = tmp_path / "com_hlora_weights.bin"
    torch.save(state, bad)
    with pytest.raises(InputError) as e:
        ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], {"comprehension": bad}, overrides=paths["overrides"])
    msg = str(e.value)
    assert "nothing was loaded" in msg and "1 key(s) of the file match no parameter" in msg and "lora_C" in msg
    assert "2 parameter(s) the file should provide are missing" in msg and "layers.{0..1}.mlp.down_proj" in msg
    assert "mm_projector.0.bias (7,) -> adapters.comprehension.0.bias (32,)" in msg


def test_a_failed_load_leaves_the_model_untouched(downloads):
    gpt = released(downloads["m3"])
    before = {n: p.clone() for n, p in gpt.model.named_parameters()}
    short = {"base_model.model.model.embed_tokens.weight": torch.zeros(3, 32)}
    with pytest.raises(InputError, match="embedding rows"):
        load_released(gpt.model, [ReleasedFile(downloads["root"] / "x.bin", None, short)])
    assert all(torch.equal(p, before[n]) for n, p in gpt.model.named_parameters())


def test_files_needing_pickled_classes_are_refused(downloads, tmp_path):
    evil = tmp_path / "com_hlora_weights.bin"
    torch.save({"w": torch.zeros(1), "cfg": pickle.PickleError("a class instance")}, evil)
    paths = downloads["m3"]
    with pytest.raises(InputError, match="pickled Python classes.*convert it once to safetensors"):
        ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], {"comprehension": evil})


def test_each_task_needs_its_own_files(downloads):
    paths = downloads["m3"]
    with pytest.raises(InputError, match="fusion_layer_weights.bin"):
        ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], {"generation": paths["gen"]}, overrides=paths["overrides"])
    with pytest.raises(InputError, match="no generation weights were loaded.*gen_hlora_weights.bin"):
        released(paths).generate_image("Reconstruct the image.", image=downloads["scan"])
    with pytest.raises(InputError, match="no H-LoRA weights"):
        ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], {"comprehension": paths["fusion"]})
    with pytest.warns(UserWarning, match="com_hlora_weights.bin is loaded as the generation plugin"):
        ReleasedHealthGPT.from_files(paths["llm"], paths["clip"], {"generation": paths["com"]}, fusion=paths["fusion"],
                                     overrides=paths["overrides"])


def test_cli_answer_and_generate_with_the_released_files(downloads, tmp_path, capsys):
    paths = downloads["m3"]
    common = ["--llm", str(paths["llm"]), "--clip", str(paths["clip"])]
    for key, value in paths["overrides"].items():
        common += ["--set", f"{key}={value}"]
    assert cli_main(["answer", str(downloads["scan"]), "Is there a lesion?", "--hlora", str(paths["com"]),
                     "--max-new-tokens", "4", *common]) == 0
    assert capsys.readouterr().out.strip()
    out = tmp_path / "recon.png"
    assert cli_main(["generate", "Reconstruct the image.", "--image", str(downloads["scan"]), "--out", str(out),
                     "--hlora", str(paths["gen"]), "--fusion", str(paths["fusion"]), "--vqgan", str(paths["vqgan"]),
                     *common]) == 0
    assert Image.open(out).size == (16, 16)
    assert cli_main(["answer", str(downloads["scan"]), "q?", "--hlora", str(paths["com"])]) == 2
    assert "--llm" in capsys.readouterr().err
