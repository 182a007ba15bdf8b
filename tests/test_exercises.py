"""The exercise checkers: correct on the solution notebook's code (also when earlier answers fell
back to the reference), incorrect (with a reason) on typical wrong answers and on answers that
call or wrap the package's own implementation, not attempted on the generated student stubs;
the fallback and STRICT behaviour of ``check()``; two hints that are not the code; student
copies generated from, and in step with, their solutions."""
import json
import shutil

import pytest
import torch

from healthgpt_lite.errors import InputError
from healthgpt_lite.exercises import (CORRECT, INCORRECT, NOT_ATTEMPTED, ExerciseNotDone, load_questions,
                                      questions_of)
from healthgpt_lite.exercises.authoring import exercise_dirs, solution_cells, stale, student_text
from healthgpt_lite.exercises.checking import RESULTS_ENV, read_verdicts

EXERCISES = [d.name for d in exercise_dirs()]


def answer_namespace(folder, copy: str) -> dict:
    """Execute the answer cells of ``copy`` ("solution" or "student"), in order, in one namespace
    (answer cells import what they need; a later one may call an earlier one's function)."""
    ns: dict = {}
    for cell in solution_cells(folder / "solution.py"):  # (student.py is these with stubs: tested below)
        exec(compile(cell if copy == "solution" else student_text(cell), f"{folder.name}/{copy}", "exec"), ns)
    return ns


def test_the_seven_exercises_exist():
    assert {"01_hvp", "02_vq", "03_hlora_forward", "04_stage_rules", "05_constrained_decoding",
            "06_metrics", "07_sequences"} <= set(EXERCISES)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_is_correct_and_stub_is_not_attempted(exercise, repo):
    folder = repo / "exercises" / exercise
    solved, blank = answer_namespace(folder, "solution"), answer_namespace(folder, "student")
    for q in questions_of(exercise):
        assert q.evaluate(solved[q.name]).status == CORRECT, q.evaluate(solved[q.name]).reason
        assert q.evaluate(blank[q.name]).status == NOT_ATTEMPTED


# ----------------------------------------------------------------------------- typical wrong answers
def _probe_choice(position: bool = False, include_embedding: bool = False, raw: bool = False, deep_ties: bool = False,
                  skip_sure: bool = True):
    """choose_hvp_layers with one slip: list positions, hidden state 0 competing, raw accuracy,
    ties to the deeper layer, or no guard against an attribute with majority 1."""
    from healthgpt_lite.vision.probes import MEANING

    def meaning(r):
        if raw:
            return sum(r[a] for a in MEANING) / len(MEANING)
        s = [(r[a] - r[f"{a} majority"]) / (1 - r[f"{a} majority"]) for a in MEANING
             if r[f"{a} majority"] < 1 or not skip_sure]
        return sum(s) / len(s)

    def choose(rows):
        pool = [r for r in rows if include_embedding or r["layer"] >= 1]
        pool = sorted(pool, key=lambda r: r["layer"], reverse=deep_ties) if not position else pool
        pick = lambda score: max(pool, key=score)  # noqa: E731
        if position:
            return {t: rows.index(pick(f)) for t, f in (("generation", lambda r: r["pixel R2"]), ("comprehension", meaning))}
        return {"generation": pick(lambda r: r["pixel R2"])["layer"], "comprehension": pick(meaning)["layer"]}
    return choose


def _clip_stats(x):
    from healthgpt_lite.vision.encoder import CLIP_MEAN, CLIP_STD

    return x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1), x.new_tensor(CLIP_STD).view(1, 3, 1, 1)


def _squared_distances(flat, codebook):
    return flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.T + codebook.pow(2).sum(1)  # (M, N)


def _mse(a, b):
    return ((a - b) ** 2).mean()


def _quantize_without_permute(z, codebook, beta):
    """Flattens (B, D, h, w) straight to (-1, D): rows mix the channels of different cells."""
    b, d, h, w = z.shape
    flat = z.reshape(-1, d)
    idx = _squared_distances(flat, codebook).argmin(1)
    z_q = codebook[idx]
    loss = _mse(z_q, flat.detach()) + beta * _mse(flat, z_q.detach())
    return (flat + (z_q - flat).detach()).reshape(b, d, h, w), loss, idx.view(b, h, w)


def _hlora(x, A, B, router, experts, alpha, expand="interleave", softmax_dim=-1, scale=None):
    r = A.shape[0] // experts
    w = torch.softmax(x @ router.T, dim=softmax_dim)  # (..., k)
    w_exp = w.repeat_interleave(r, dim=-1) if expand == "interleave" else w.repeat(*([1] * (w.ndim - 1)), r)
    return ((w_exp * (x @ A.T)) @ B.T) * (alpha / r if scale is None else scale(alpha, r, experts))


def _moelora_strided(x, A, B, router, experts, alpha):
    """Takes every k-th row of A for expert i (A[i::k]): the loop form of the `repeat` bug."""
    r, w, out = A.shape[0] // experts, torch.softmax(x @ router.T, dim=-1), 0
    for i in range(experts):
        out = out + w[..., i:i + 1] * (x @ A[i::experts].T @ B[:, i::experts].T)
    return out * alpha / r


def _one_pass_freeze(model, groups, trains):
    """Freezes the base, but then switches each group on or off in one pass: image_rows, listed
    after embeddings and head, switches their shared tensors off again in stage 2."""
    model.requires_grad_(False)
    for name, params in groups.items():
        for p in params:
            p.requires_grad_(name in trains)


def _row_mask(first_row, dtype=None, inverted=False, strict=False):
    def answer(weight, first):
        keep = torch.zeros(weight.shape[0], 1, dtype=dtype or weight.dtype)
        keep[first + 1 if strict else first:] = 1
        keep = 1 - keep if inverted else keep
        return weight.register_hook(lambda g: g * keep)
    return answer


def _zero_text_grad_once(weight, first):
    """Zeroes the rows of a gradient that does not exist yet: no hook, nothing happens."""
    if weight.grad is not None:
        weight.grad[:first] = 0


def _freeze_text_rows_by_zeroing(weight, first):
    with torch.no_grad():
        weight[:first] = 0
    return weight.register_hook(lambda g: torch.cat([torch.zeros_like(g[:first]), g[first:]]))


def _no_handle(weight, first):
    weight.register_hook(lambda g: torch.cat([torch.zeros_like(g[:first]), g[first:]]))


def _encode(**slip):
    """encode_example with one slip (see the keys below)."""
    from healthgpt_lite.model.multimodal import PROMPT_HEAD, PROMPT_TAIL, SequenceLayout

    def answer(tokenizer, user, n_visual, answer=None, image_codes=None, generation=False):
        from healthgpt_lite.data.text_tokenizer import image_token_ids

        layout = SequenceLayout.from_tokenizer(tokenizer)
        tok = lambda t: tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
        before, has, after = user.partition("<image>")
        slots = [layout.image] * (1 if slip.get("one_slot") else n_visual) if has else []
        prompt = tok(PROMPT_HEAD) + tok(before) + slots + tok(after) + tok(PROMPT_TAIL)
        response = []
        if generation:
            (response if slip.get("label_start") else prompt).append(layout.start)
        if image_codes is not None:
            offset = 0 if slip.get("raw_codes") else image_token_ids(tokenizer).first_idx
            response += (image_codes.reshape(-1) + offset).tolist() + [layout.end_image]
        elif answer is not None:
            response += tok(answer)
        if (image_codes is not None or answer is not None) and not slip.get("no_end"):
            response.append(layout.end_turn)
        ids = prompt + response
        masked = [0 if slip.get("mask_zero") else -100] * len(prompt)
        labels = ids if slip.get("label_all") else masked + response
        if slip.get("shift"):
            labels = labels[1:] + [-100]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
    return answer


def _splice_by_batch_index(inputs_embeds, input_ids, visual, image_token_id):
    out = inputs_embeds.clone()
    for b in range(len(input_ids)):
        slots = input_ids[b] == image_token_id
        if slots.any():
            out[b, slots] = visual[b].to(out.dtype)
    return out


def _splice_in_place(inputs_embeds, input_ids, visual, image_token_id):
    slots = input_ids == image_token_id
    if visual is not None:
        with torch.no_grad():
            inputs_embeds[slots] = visual.reshape(-1, visual.shape[-1]).to(inputs_embeds.dtype)
    return inputs_embeds


def _splice_detached(inputs_embeds, input_ids, visual, image_token_id):
    slots = input_ids == image_token_id
    if int(slots.sum()) != (0 if visual is None else visual.shape[0] * visual.shape[1]):
        raise ValueError("count")
    if visual is None:
        return inputs_embeds
    return inputs_embeds.masked_scatter(slots.unsqueeze(-1), visual.detach().to(inputs_embeds.dtype))


def _splice_unchecked(inputs_embeds, input_ids, visual, image_token_id):
    """Right on every consistent batch, but says nothing when the counts disagree."""
    if visual is None:
        return inputs_embeds
    slots = (input_ids == image_token_id).unsqueeze(-1)
    return inputs_embeds.masked_scatter(slots, visual.to(inputs_embeds.dtype).expand(2, -1, -1))


def _mask_counting_from_first_start(input_ids, vocab_size, block, n_tokens, end_turn):
    B, T = input_ids.shape
    allowed = torch.ones(B, vocab_size, dtype=torch.bool)
    for row in range(B):
        starts = (input_ids[row] == block.start).nonzero().flatten()
        if len(starts):
            k = T - 1 - int(starts[0])
            allowed[row] = False
            if k < n_tokens:
                allowed[row, block.first_idx:block.first_idx + block.n_codes] = True
            else:
                allowed[row, block.end if k == n_tokens else end_turn] = True
    return allowed


def _mask_from_last_start(input_ids, vocab_size, block, n_tokens, end_turn):
    B, T = input_ids.shape
    allowed = torch.ones(B, vocab_size, dtype=torch.bool)
    for row in range(B):
        starts = (input_ids[row] == block.start).nonzero().flatten()
        if len(starts):
            k = T - 1 - int(starts[-1])
            allowed[row] = False
            if k < n_tokens:
                allowed[row, block.first_idx:block.first_idx + block.n_codes] = True
            else:
                allowed[row, block.end if k == n_tokens else end_turn] = True
    return allowed


def _mask_allowing_text(input_ids, vocab_size, block, n_tokens, end_turn):
    allowed = _mask_from_last_start(input_ids, vocab_size, block, n_tokens, end_turn)
    allowed[:, :block.start] = True
    return allowed


def _psnr_fixed_range(pred, target, data_range=1.0):
    return 10 * torch.log10(1 / ((pred - target) ** 2).mean(dim=(1, 2, 3)))


def _ssim(pred, target, data_range):
    from healthgpt_lite.exercises.ex06_metrics import local_mean

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = local_mean(pred), local_mean(target)
    vx, vy, cov = local_mean(pred * pred) - mx**2, local_mean(target * target) - my**2, local_mean(pred * target) - mx * my
    return ((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean(dim=(1, 2, 3))


def _psnr_20log(pred, target, data_range=1.0):
    return 20 * torch.log10(data_range**2 / ((pred - target) ** 2).mean(dim=(1, 2, 3)))


def _psnr_of_batch(pred, target, data_range=1.0):
    return 10 * torch.log10(data_range**2 / ((pred - target) ** 2).mean())


def _ssim_global(pred, target, data_range=1.0):
    from healthgpt_lite.exercises.ex06_metrics import _global_ssim

    return _global_ssim(pred, target, data_range)


WRONG = [
    ("01_hvp", "q1", _probe_choice(position=True), "a position in the list of rows"),
    ("01_hvp", "q1", _probe_choice(include_embedding=True), "only block outputs"),
    ("01_hvp", "q1", _probe_choice(raw=True), "raw accuracy"),
    ("01_hvp", "q1", _probe_choice(deep_ties=True), "a tie goes to the *shallower* layer"),
    ("01_hvp", "q1", _probe_choice(skip_sure=False), "raised ZeroDivisionError"),
    ("01_hvp", "q2", lambda x: 2 * x - 1, "CLIP has its own mean and std"),
    ("01_hvp", "q2", lambda x: (x - _clip_stats(x)[0]) * _clip_stats(x)[1], "normalising divides"),
    ("01_hvp", "q2", lambda x: x, "the pixels are unchanged"),
    ("01_hvp", "q2", lambda x: (x - x.new_tensor([0.48145466, 0.4578275, 0.40821073])) /
     x.new_tensor([0.26862954, 0.26130258, 0.27577711]), "raised RuntimeError"),
    ("02_vq", "q1", lambda flat, codebook: _squared_distances(flat, codebook).argmax(1), "farthest"),
    ("02_vq", "q1", lambda flat, codebook: (flat @ codebook.T).argmax(1), "largest dot product"),
    ("02_vq", "q1", lambda flat, codebook: _squared_distances(flat, codebook).argmin(1, keepdim=True), "shape"),
    ("02_vq", "q2", lambda z, z_q: z + (z_q - z), "codebook (z_q) gets the decoder's gradient"),
    ("02_vq", "q2", lambda z, z_q: z_q.detach(), "no gradient reaches the encoder"),
    ("02_vq", "q2", lambda z, z_q: z_q + (z - z_q).detach(), "the forward value is z"),
    ("02_vq", "q3", lambda z, z_q, beta: beta * _mse(z_q, z.detach()) + _mse(z, z_q.detach()),
     "which of the two terms should beta weigh"),
    ("02_vq", "q3", lambda z, z_q, beta: _mse(z_q, z) + beta * _mse(z, z_q), "stop the gradient"),
    ("02_vq", "q3", lambda z, z_q, beta: ((z_q - z.detach()) ** 2).sum() + beta * ((z - z_q.detach()) ** 2).sum(),
     "not the sum"),
    ("02_vq", "q4", _quantize_without_permute, "move D last before flattening"),
    ("03_hlora_forward", "q1", lambda w, r: torch.cat([w] * r, dim=-1), "so column j needs expert j // r"),
    ("03_hlora_forward", "q1", lambda w, r: w.repeat_interleave(r), "flattened?"),
    ("03_hlora_forward", "q2", lambda *args: _hlora(*args, expand="repeat"), "contiguous rows"),
    ("03_hlora_forward", "q2", lambda *args: _hlora(*args, softmax_dim=0), "sum to 1 over the k experts"),
    ("03_hlora_forward", "q2", lambda *args: _hlora(*args, scale=lambda a, r, k: a / (r * k)), "4x too small"),
    ("03_hlora_forward", "q3", _moelora_strided, "contiguous rows"),
    ("04_stage_rules", "q1", lambda m, g, t: None, "outside every group"),
    ("04_stage_rules", "q1", _one_pass_freeze, "one tensor can belong to two groups"),
    ("04_stage_rules", "q2", _row_mask(0, inverted=True), "the wrong way round"),
    ("04_stage_rules", "q2", _row_mask(0, strict=True), "first_row itself learns"),
    ("04_stage_rules", "q2", _row_mask(0, dtype=torch.float32), "raised RuntimeError"),
    ("04_stage_rules", "q2", _zero_text_grad_once, "still get a gradient"),
    ("04_stage_rules", "q2", lambda w, f: w.requires_grad_(False), "requires_grad is one flag per tensor"),
    ("04_stage_rules", "q2", _freeze_text_rows_by_zeroing, "changed the weights themselves"),
    ("04_stage_rules", "q2", _no_handle, "return the handle"),
    ("05_constrained_decoding", "q1", _mask_counting_from_first_start, "count the tokens after the last one"),
    ("05_constrained_decoding", "q1", _mask_allowing_text, "still allows text tokens after <start_index>"),
    ("05_constrained_decoding", "q1", lambda i, v, b, n, e: torch.ones(i.shape[0], v), "return a bool mask"),
    ("05_constrained_decoding", "q1", lambda i, v, b, n, e: torch.ones(i.shape, dtype=torch.bool), "one row per sequence"),
    ("06_metrics", "q1", _psnr_20log, "MSE is already a squared error"),
    ("06_metrics", "q1", _psnr_fixed_range, "ignore data_range=255"),
    ("06_metrics", "q1", lambda p, t, data_range=1.0: 10 * torch.log10(data_range / ((p - t) ** 2).mean(dim=(1, 2, 3))),
     "the peak enters squared"),
    ("06_metrics", "q2", lambda p, t, data_range=1.0: _ssim(p, t, 1.0), "ignore data_range"),
    ("06_metrics", "q1", _psnr_of_batch, "one value per image"),
    ("06_metrics", "q2", _ssim_global, "one global window"),
    ("06_metrics", "q3", lambda text: text.lower().strip(), "does not follow every rule"),
    ("06_metrics", "q3", lambda text: 1 / 0, "raised ZeroDivisionError"),
    ("07_sequences", "q1", _encode(no_end=True), "must end with <|end|>"),
    ("07_sequences", "q1", _encode(label_start=True), "<start_index> is labelled"),
    ("07_sequences", "q1", _encode(label_all=True), "only the response counts"),
    ("07_sequences", "q1", _encode(shift=True), "shifted by one"),
    ("07_sequences", "q1", _encode(mask_zero=True), "only ignores -100"),
    ("07_sequences", "q1", _encode(raw_codes=True), "raw VQ indices"),
    ("07_sequences", "q1", _encode(one_slot=True), "n_visual slots"),
    ("07_sequences", "q2", _splice_by_batch_index, "the middle one without an image (visual holds 2 entries)"),
    ("07_sequences", "q2", _splice_in_place, "in place"),
    ("07_sequences", "q2", _splice_detached, "no gradient reaches the visual tokens"),
    ("07_sequences", "q2", _splice_unchecked, "must refuse with an error"),
    ("07_sequences", "q2", lambda e, i, v, t: e.float().masked_scatter((i == t).unsqueeze(-1), v), "the embeddings' dtype"),
]


@pytest.mark.parametrize("exercise, label, answer, reason", WRONG, ids=[f"{e}-{q}-{r[:24]}" for e, q, _, r in WRONG])
def test_typical_wrong_answer_is_incorrect_with_a_reason(exercise, label, answer, reason):
    q = {q.label: q for q in questions_of(exercise)}[label]
    verdict = q.evaluate(answer)
    assert verdict.status == INCORRECT and reason in verdict.reason, verdict.reason


# ----------------------------------------------------------------------------- answers that use the package's own code
ALL_QUESTIONS = [(e, q) for e in EXERCISES for q in questions_of(e)]
QUESTION_IDS = [f"{e}-{q.label}" for e, q in ALL_QUESTIONS]


def _wrappers(q):
    """Four ways to hand back the reference's work: a call, an alias in a default argument, a
    closure, and a call that hides behind ``except Exception``. (Package functions reached
    through ``importlib``, so that no import line names them, are tested below.)"""
    ref = q.reference

    def through_closure():
        inner = ref
        return lambda *a: inner(*a)

    def hidden(*a):
        try:
            return ref(*a)
        except Exception:
            return None

    return {"call": lambda *a: q.reference(*a), "default argument": lambda *a, _r=ref: _r(*a),
            "closure": through_closure(), "except Exception": hidden}


@pytest.mark.parametrize("exercise, q", ALL_QUESTIONS, ids=QUESTION_IDS)
def test_an_answer_that_wraps_the_reference_is_incorrect(exercise, q):
    for how, answer in _wrappers(q).items():
        verdict = q.evaluate(answer)
        assert verdict.status == INCORRECT and "the package's own" in verdict.reason, (how, verdict.reason)


def _package_callers():
    """Answers that call the package's implementation by its import path, not q.reference."""
    import importlib

    def attr(path):
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    return [
        ("01_hvp", "q1", lambda rows: attr("healthgpt_lite.vision.probes.choose_hvp_layers")(rows)),
        ("01_hvp", "q2", lambda x: attr("healthgpt_lite.vision.encoder.normalize_pixels")(x)),
        ("03_hlora_forward", "q2", lambda x, A, B, router, k, alpha: _via_plugin(x, A, B, router, k, alpha)),
        ("04_stage_rules", "q2", lambda w, f: attr("healthgpt_lite.training.lit_module.train_only_rows_from")(w, f)),
        ("06_metrics", "q1", lambda p, t, data_range=1.0: torch.stack(
            [attr("torchmetrics.functional.image.peak_signal_noise_ratio")(a, b, data_range=data_range)
             for a, b in zip(p, t)])),
        ("06_metrics", "q1", lambda p, t, data_range=1.0: torch.tensor(
            [attr("skimage.metrics.peak_signal_noise_ratio")(b.numpy(), a.numpy(), data_range=data_range)
             for a, b in zip(p, t)], dtype=torch.float32)),
        ("07_sequences", "q1", lambda tok, user, n, answer=None, image_codes=None, generation=False:
            attr("healthgpt_lite.model.multimodal.encode_example")(tok, user, n, 10**6, answer, image_codes, generation)),
        ("07_sequences", "q2", lambda *a: attr("healthgpt_lite.model.multimodal.splice_visual_tokens")(*a)),
    ]


def _via_plugin(x, A, B, router, k, alpha):
    from healthgpt_lite.config import PluginConfig
    from healthgpt_lite.lora import HLoRAPlugin

    plugin = HLoRAPlugin(A.shape[1], B.shape[0], PluginConfig(rank=A.shape[0], experts=k, alpha=alpha, dropout=0.0),
                         dtype=A.dtype).eval()
    with torch.no_grad():
        plugin.A.weight.copy_(A), plugin.B.weight.copy_(B), plugin.router.weight.copy_(router)
        return plugin(x)


@pytest.mark.parametrize("exercise, label, answer", _package_callers(), ids=[f"{e}-{q}" for e, q, _ in _package_callers()])
def test_an_answer_that_calls_the_package_by_its_import_path_is_incorrect(exercise, label, answer):
    q = {q.label: q for q in questions_of(exercise)}[label]
    verdict = q.evaluate(answer)
    assert verdict.status == INCORRECT and "the package's own" in verdict.reason, verdict.reason


def test_a_reference_named_in_a_dead_branch_is_found_without_calling_it():
    from healthgpt_lite.vision.encoder import normalize_pixels as package_version

    (q1, q2) = questions_of("01_hvp")

    def answer(pixels):
        if pixels.shape[0] < 0:  # never true
            return package_version(pixels)
        return None

    verdict = q2.evaluate(answer)
    assert verdict.status == INCORRECT and "normalize_pixels" in verdict.reason


def test_the_poison_is_lifted_after_every_check():
    from healthgpt_lite.vision.encoder import normalize_pixels

    (_, q2) = questions_of("01_hvp")
    q2.evaluate(lambda x: q2.reference(x))
    assert normalize_pixels(torch.zeros(1, 3, 2, 2)).shape == (1, 3, 2, 2)  # runs again


@pytest.mark.parametrize("exercise, q", ALL_QUESTIONS, ids=QUESTION_IDS)
def test_every_forbidden_path_names_python_functions(exercise, q):
    from healthgpt_lite.exercises.poison import resolve

    for path in q.forbidden:
        assert resolve(path), f"{path} names no Python function that could be poisoned"


@pytest.mark.parametrize("exercise", EXERCISES)
def test_a_solution_built_on_earlier_fallbacks_is_correct(exercise, repo):
    """A student who left q1 blank gets the reference as q1; their own q2, calling it, must not
    be mistaken for a wrapper of the package (forbidden names only this question's code)."""
    folder = repo / "exercises" / exercise
    questions = questions_of(exercise)
    for j, q in enumerate(questions[1:], 1):
        ns = answer_namespace(folder, "solution")
        for earlier in questions[:j]:
            ns[earlier.name] = earlier.reference  # what check() binds after a blank answer
        for cell in solution_cells(folder / "solution.py"):  # re-run q's own cell so it sees the fallbacks
            if f"def {q.name}(" in cell:
                exec(compile(cell, f"{exercise}/solution", "exec"), ns)
        verdict = q.evaluate(ns[q.name])
        assert verdict.status == CORRECT, (q.label, verdict.reason)


@pytest.mark.parametrize("exercise, q", ALL_QUESTIONS, ids=QUESTION_IDS)
def test_two_hints_neither_of_which_is_the_code(exercise, q, repo, capsys):
    import re

    assert len(q.hints) == 2 and all(len(h) > 40 for h in q.hints) and q.hints[0] != q.hints[1]
    solution = [line.strip() for line in solution_code_lines(repo, exercise, q.name)]
    for hint in q.hints:
        assert not re.search(r"\w+\([^)]*\)\.\w+\(|\bdim=|\[:, ?\d|\.T\b|@", hint), f"code in a hint: {hint}"
        assert not any(len(line) > 15 and line in hint for line in solution), f"a solution line in a hint: {hint}"
    q.hint()
    q.hint(2)
    out = capsys.readouterr().out
    assert f"{q.label}.hint(2)" in out and f"{q.label}.solution()" in out


def solution_code_lines(repo, exercise, name):
    from healthgpt_lite.exercises.checking import solution_code

    code = solution_code(exercise, name, repo)
    inside = code.split("### BEGIN SOLUTION", 1)[-1].split("### END SOLUTION", 1)[0]
    return [line for line in inside.splitlines()[1:] if line.strip() and not line.strip().startswith("#")]


# ----------------------------------------------------------------------------- check(): fallback, STRICT, recording
def test_check_falls_back_to_the_reference_and_records(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "verdicts.jsonl"))
    ns = {"normalize_answer": lambda text: None}  # the blank stub
    q1, q2, q3 = load_questions("06_metrics", ns)
    verdict = q3.check()
    assert verdict.status == NOT_ATTEMPTED and verdict.fallback
    assert ns["normalize_answer"] is q3.reference and ns["normalize_answer"]("The Liver.") == "liver"
    assert "Not attempted" in capsys.readouterr().out
    assert q3.check().status == NOT_ATTEMPTED  # still the fallback, not a "correct" for the reference
    q1.check()  # psnr is not defined at all
    recorded = read_verdicts(tmp_path / "verdicts.jsonl")
    assert recorded["q3"].status == NOT_ATTEMPTED and recorded["q1"].reason.startswith("`psnr` is not defined")


def test_strict_raises_instead_of_falling_back():
    ns = {"set_trainable": lambda model, groups, trains: None}
    q1, _ = load_questions("04_stage_rules", ns, strict=True)
    with pytest.raises(ExerciseNotDone, match="incorrect"):
        q1.check()
    assert ns["set_trainable"] is not q1.reference


def test_solution_shows_the_solution_cell(capsys):
    (q1,) = load_questions("05_constrained_decoding", {})
    q1.hint()
    q1.solution()
    out = capsys.readouterr().out
    assert "Hint" in out and "def allowed_next_tokens(" in out and "### BEGIN SOLUTION" in out


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(InputError, match="no checker for exercise '99_nothing'"):
        load_questions("99_nothing", {})


# ----------------------------------------------------------------------------- authoring
def test_student_text_replaces_blocks_with_stubs_at_their_indentation():
    solution = ("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\n"
                "def g():\n    ### BEGIN SOLUTION stub: return None\n    return 1\n    ### END SOLUTION\n")
    assert student_text(solution) == ("def f(x):\n    raise NotImplementedError  # your code here\n\n"
                                      "def g():\n    return None\n")


@pytest.mark.parametrize("bad, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the block"),
    ("x = 1  ### BEGIN SOLUTION\n", "stand alone"),
    ("x = 1\n", "no ### BEGIN SOLUTION"),
])
def test_broken_markers_are_reported_with_the_line(bad, message):
    with pytest.raises(InputError, match=message):
        student_text(bad, "ex.py")


def test_committed_student_copies_are_up_to_date():
    assert stale() == []


def test_a_stale_student_copy_is_detected(tmp_path, repo):
    folder = tmp_path / "exercises" / "06_metrics"
    shutil.copytree(repo / "exercises" / "06_metrics", folder)
    assert stale(tmp_path) == []
    (folder / "solution.py").write_text((folder / "solution.py").read_text().replace("# # Exercise 06", "# # Exercise 06 (edited)"))
    assert any("student.py is stale" in p for p in stale(tmp_path))


@pytest.mark.parametrize("exercise", EXERCISES)
def test_exercise_notebook_anatomy(exercise, repo):
    nb = json.loads((repo / "exercises" / exercise / "student.ipynb").read_text())
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    names = {line.split("=")[0].strip() for line in "".join(params[0]["source"]).splitlines() if "=" in line}
    assert names == {"PROFILE", "PRESET", "SEED", "ARTIFACTS_DIR", "DATA_DIR", "OVERRIDES", "STRICT"}
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for part in ("**Learning objectives.**", "## Summary", "## Check your understanding", "README.md"):
        assert part in text
    questions = text.split("## Check your understanding", 1)[1]
    assert questions.count("<details><summary>") >= 3 and "*(" not in questions, "hide the answers in <details>"


def test_cli_build_check(capsys):
    from healthgpt_lite.cli import main

    assert main(["exercises", "build", "--check"]) == 0
    assert "all student copies up to date" in capsys.readouterr().out
