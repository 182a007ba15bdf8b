"""Image tokens know their grid cell (and, "aligned", so does the input image), the KV-cache decoder agrees with one full forward pass,
sampling is seeded, and exposure-bias noise touches only image-code inputs."""
import pytest
import torch

from healthgpt_lite.artifacts import data_dir_for
from healthgpt_lite.config import build_config
from healthgpt_lite.data.records import load_records
from healthgpt_lite.data.text_tokenizer import ImageTokenIds
from healthgpt_lite.errors import InputError
from healthgpt_lite.model.image_decoding import pick_codes
from healthgpt_lite.model.image_positions import ImagePositions
from healthgpt_lite.training.lit_module import corrupt_image_tokens

START = 7


def test_grid_positions_are_added_only_after_start_index():
    pos = ImagePositions(grid=2, hidden_size=3)
    with torch.no_grad():
        pos.row.copy_(torch.tensor([[1.0, 0, 0], [2.0, 0, 0]]))
        pos.col.copy_(torch.tensor([[0, 10.0, 0], [0, 20.0, 0]]))
    ids = torch.tensor([[1, START, 9, 9, 9, 9, 2],   # <start_index> at 1: codes 0..3 predicted at 1..4
                        [1, 2, 3, 4, 5, 6, 7 - 1]])  # no <start_index>: a comprehension row
    out = pos.add_to(torch.zeros(2, 7, 3), ids, START)
    expected = torch.zeros(7, 3)
    expected[1:5] = torch.tensor([[1.0, 10, 0], [1, 20, 0], [2, 10, 0], [2, 20, 0]])  # row-major: (0,0) (0,1) (1,0) (1,1)
    assert torch.equal(out[0], expected)
    assert torch.equal(out[1], torch.zeros(7, 3))
    assert torch.equal(pos.at(3), torch.tensor([2.0, 20, 0]))


def test_fresh_grid_positions_change_nothing():
    """Zero-initialised: a fresh model computes exactly what the paper's model computes."""
    pos = ImagePositions(grid=4, hidden_size=8)
    embeds = torch.randn(2, 20, 8)
    ids = torch.full((2, 20), 3)
    ids[:, 2] = START
    assert torch.equal(pos.add_to(embeds, ids, START), embeds)


def test_aligned_input_positions_are_the_mean_over_the_cells_a_patch_covers():
    pos = ImagePositions(grid=4, hidden_size=2, on_input=True)
    with torch.no_grad():
        pos.row.copy_(torch.tensor([[1.0, 0], [3, 0], [5, 0], [7, 0]]))
        pos.col.copy_(torch.tensor([[0, 10.0], [0, 30], [0, 50], [0, 70]]))
    table = pos.input_table(4)  # a 2 x 2 patch grid over 4 x 4 code cells: each patch covers 2 x 2 cells
    assert torch.equal(table, torch.tensor([[2.0, 20], [2, 60], [6, 20], [6, 60]]))
    with pytest.raises(ValueError, match="not a square patch grid"):
        pos.input_table(5)


def test_aligned_positions_reach_only_the_generation_input(smoke_gpt, gen_records):
    """``image_tokens.positions="aligned"``: the generation task's visual tokens carry the grid
    vectors of their cells; the comprehension task's and the "grid" model's do not."""
    from healthgpt_lite.model.image_positions import image_positions_for

    model, cfg = smoke_gpt.model, smoke_gpt.cfg
    texts, images = gen_records
    ids = smoke_gpt.tokenizer("<image>" * cfg.vision.num_tokens, return_tensors="pt")["input_ids"]
    pixels = smoke_gpt.pixels(images[:1])
    saved = model.image_positions
    try:
        aligned = image_positions_for(type(cfg)(image_tokens=type(cfg.image_tokens)(positions="aligned")))
        with torch.no_grad():
            aligned.row.normal_(), aligned.col.normal_()
        for task, changes in (("generation", True), ("comprehension", False)):
            model.set_task(task)
            model.image_positions = saved
            plain = model.embed(ids, pixels=pixels)
            model.image_positions = aligned
            assert (not torch.equal(model.embed(ids, pixels=pixels), plain)) == changes, task
    finally:
        model.image_positions = saved
    assert image_positions_for(cfg).on_input is True  # the default, "aligned"
    grid = build_config("tiny", "smoke", {"image_tokens.positions": "grid"})
    assert image_positions_for(grid).on_input is False  # "grid" leaves the input alone


def test_pick_codes_greedy_top1_and_seeded_samples():
    logits = torch.randn(5, 50)
    assert torch.equal(pick_codes(logits), logits.argmax(-1))
    assert torch.equal(pick_codes(logits, temperature=1.0, top_k=1), logits.argmax(-1))  # top-1 sampling = greedy
    a = pick_codes(logits, 1.0, None, torch.Generator().manual_seed(3))
    b = pick_codes(logits, 1.0, None, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    top = logits.topk(4, -1).indices
    draws = torch.stack([pick_codes(logits, 2.0, 4, torch.Generator().manual_seed(s)) for s in range(20)], 1)
    assert all(set(draws[i].tolist()) <= set(top[i].tolist()) for i in range(5))  # never outside the top-k


@pytest.fixture(scope="module")
def gen_records(smoke_gpt, shared_artifacts):
    d = data_dir_for(smoke_gpt.cfg, shared_artifacts)
    recs = [r for r in load_records(d / "train.json") if r["task"] in ("ct2mri", "super_resolution")][:5]
    assert len({len(r["conversations"][0]["value"]) for r in recs}) > 1  # prompts of different lengths: left padding
    return [r["conversations"][0]["value"] for r in recs], [d / r["image"] for r in recs]


def test_cached_greedy_decoding_equals_one_teacher_forced_pass_over_its_own_output(smoke_gpt, gen_records):
    """The KV cache, left padding, RoPE positions and grid positions of the step-by-step decoder
    give exactly the logits of one full forward pass over the same sequence."""
    texts, images = gen_records
    codes = smoke_gpt.generate_codes(texts, images)
    assert torch.equal(smoke_gpt.teacher_forced_codes(texts, images, codes), codes)


def test_sampling_is_seeded_and_differs_from_greedy(smoke_gpt, gen_records):
    texts, images = gen_records
    draw = lambda seed: smoke_gpt.generate_codes(texts, images, temperature=1.5, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))
    assert not torch.equal(draw(0), smoke_gpt.generate_codes(texts, images))


@pytest.mark.parametrize("kwargs", [{"temperature": -1.0}, {"top_k": 0}])
def test_bad_sampling_settings_are_refused(smoke_gpt, gen_records, kwargs):
    with pytest.raises(InputError, match="temperature"):
        smoke_gpt.generate_codes(*gen_records, **kwargs)


def test_image_token_noise_replaces_only_code_inputs():
    block = ImageTokenIds(start=100, end=613, first_idx=101, n_codes=512)
    ids = torch.cat([torch.arange(50), torch.tensor([100]), 101 + torch.randint(0, 512, (2000,)), torch.tensor([613, 5])])[None]
    torch.manual_seed(0)
    noisy = corrupt_image_tokens(ids, block, 0.25)
    changed = noisy != ids
    assert not changed[0, :51].any() and not changed[0, -2:].any()  # text, <start_index>, <end_index> untouched
    assert 0.2 < changed[0, 51:-2].float().mean() < 0.3  # about p of the codes (a few draw their own code again)
    assert ((noisy[0, 51:-2] >= 101) & (noisy[0, 51:-2] < 613)).all()  # still image codes
