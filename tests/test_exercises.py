"""The exercise checkers: correct on the solution notebook's code, incorrect (with a reason) on
typical wrong answers, not attempted on the generated student stubs; the fallback and STRICT
behaviour of ``check()``; student copies generated from, and in step with, their solutions."""
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


def test_the_six_exercises_exist():
    assert {"01_hvp", "02_vq", "03_hlora_forward", "04_stage_rules", "05_constrained_decoding",
            "06_metrics"} <= set(EXERCISES)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_is_correct_and_stub_is_not_attempted(exercise, repo):
    folder = repo / "exercises" / exercise
    solved, blank = answer_namespace(folder, "solution"), answer_namespace(folder, "student")
    for q in questions_of(exercise):
        assert q.evaluate(solved[q.name]).status == CORRECT, q.evaluate(solved[q.name]).reason
        assert q.evaluate(blank[q.name]).status == NOT_ATTEMPTED


# ----------------------------------------------------------------------------- typical wrong answers
HVP_LAYER = {"generation": 1, "comprehension": -2}


def _hvp_reading(layers: dict, keep_cls: bool = False):
    return lambda hidden, task: hidden[layers[task]][:, 0 if keep_cls else 1:]


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


def _groups_without_image_rows(stage, task):
    from healthgpt_lite.exercises.ex04_stage_rules import reference_trainable_groups

    return reference_trainable_groups(stage, task) - {"image_rows"}


def _stage1_only(stage, task):
    """Answers stage 1 and falls off the end (None) for the others: incorrect, not blank."""
    from healthgpt_lite.exercises.ex04_stage_rules import reference_trainable_groups

    if stage == "stage1":
        return reference_trainable_groups(stage, task)


def _one_pass_freeze(model, groups, stage, task):
    """Freezes the base, but then switches each group on or off in one pass: image_rows, listed
    after embeddings and head, switches their shared tensors off again in stage 2."""
    from healthgpt_lite.exercises.ex04_stage_rules import reference_trainable_groups

    model.requires_grad_(False)
    for name, params in groups.items():
        for p in params:
            p.requires_grad_(name in reference_trainable_groups(stage, task))


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


def _mask_allowing_text(input_ids, vocab_size, block, n_tokens, end_turn):
    from healthgpt_lite.exercises.ex05_constrained_decoding import reference_allowed_next_tokens

    allowed = reference_allowed_next_tokens(input_ids, vocab_size, block, n_tokens, end_turn)
    allowed[:, :block.start] = True
    return allowed


def _psnr_20log(pred, target, data_range=1.0):
    return 20 * torch.log10(data_range**2 / ((pred - target) ** 2).mean(dim=(1, 2, 3)))


def _psnr_of_batch(pred, target, data_range=1.0):
    return 10 * torch.log10(data_range**2 / ((pred - target) ** 2).mean())


def _ssim_global(pred, target, data_range=1.0):
    from healthgpt_lite.exercises.ex06_metrics import _global_ssim

    return _global_ssim(pred, target, data_range)


WRONG = [
    ("01_hvp", "q1", _hvp_reading({"generation": 1, "comprehension": -1}), "avoids the final block"),
    ("01_hvp", "q1", _hvp_reading(HVP_LAYER, keep_cls=True), "keeps the CLS token"),
    ("01_hvp", "q1", _hvp_reading({"generation": 2, "comprehension": -2}), "off by one"),
    ("01_hvp", "q1", _hvp_reading({"generation": 1, "comprehension": 3}), "a fixed index fits one depth only"),
    ("01_hvp", "q1", lambda hidden, task: hidden[HVP_LAYER[task]][:, :-1], "drops the last patch token"),
    ("01_hvp", "q2", lambda x: 2 * x - 1, "CLIP has its own mean and std"),
    ("01_hvp", "q2", lambda x: (x - _clip_stats(x)[0]) * _clip_stats(x)[1], "normalising divides"),
    ("01_hvp", "q2", lambda x: x, "the pixels are unchanged"),
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
    ("04_stage_rules", "q1", lambda s, t: {"abstract_adapter"}, "does not train in this stage"),
    ("04_stage_rules", "q1", _groups_without_image_rows, "image-token rows"),
    ("04_stage_rules", "q1", lambda s, t: ["lora"], "'lora' is not a parameter group"),
    ("04_stage_rules", "q1", lambda s, t: _stage1_only(s, t), "it returned None"),
    ("04_stage_rules", "q2", lambda m, g, s, t: None, "outside every group"),
    ("04_stage_rules", "q2", _one_pass_freeze, "one tensor can belong to two groups"),
    ("05_constrained_decoding", "q1", _mask_counting_from_first_start, "count the tokens after the last one"),
    ("05_constrained_decoding", "q1", _mask_allowing_text, "still allows text tokens after <start_index>"),
    ("05_constrained_decoding", "q1", lambda i, v, b, n, e: torch.ones(i.shape[0], v), "return a bool mask"),
    ("05_constrained_decoding", "q1", lambda i, v, b, n, e: torch.ones(i.shape, dtype=torch.bool), "one row per sequence"),
    ("06_metrics", "q1", _psnr_20log, "MSE is already a squared error"),
    ("06_metrics", "q1", _psnr_of_batch, "one value per image"),
    ("06_metrics", "q2", _ssim_global, "one global window"),
    ("06_metrics", "q3", lambda text: text.lower().strip(), "does not follow every rule"),
    ("06_metrics", "q3", lambda text: 1 / 0, "raised ZeroDivisionError"),
]


@pytest.mark.parametrize("exercise, label, answer, reason", WRONG, ids=[f"{e}-{q}-{r[:24]}" for e, q, _, r in WRONG])
def test_typical_wrong_answer_is_incorrect_with_a_reason(exercise, label, answer, reason):
    q = {q.label: q for q in questions_of(exercise)}[label]
    verdict = q.evaluate(answer)
    assert verdict.status == INCORRECT and reason in verdict.reason, verdict.reason


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
    ns = {"trainable_groups": lambda stage, task: {"abstract_adapter"}}
    q1, _ = load_questions("04_stage_rules", ns, strict=True)
    with pytest.raises(ExerciseNotDone, match="incorrect"):
        q1.check()
    assert ns["trainable_groups"] is not q1.reference


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


def test_cli_build_check(capsys):
    from healthgpt_lite.cli import main

    assert main(["exercises", "build", "--check"]) == 0
    assert "all student copies up to date" in capsys.readouterr().out
