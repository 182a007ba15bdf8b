"""Step-indexed batches split one global batch into slots (ranks x accumulated micro-batches):
every way of splitting it sees the same examples in the same order, and a run started at a
step continues the sequence of a run started at 0."""
from itertools import islice

import pytest
import torch

from healthgpt_lite.training.sampling import StepBatchSampler, step_seed


def _micro_batches(sampler: StepBatchSampler, steps: int) -> list[list[int]]:
    return list(islice(iter(sampler), steps * sampler.accumulate))


def test_one_slot_takes_the_steps_slice_of_its_epochs_permutation():
    s = StepBatchSampler(10, 4, seed=3)  # 2 steps per epoch; 2 examples left out of each epoch
    for step in range(6):
        epoch, i = divmod(step, 2)
        order = torch.randperm(10, generator=torch.Generator().manual_seed(3 * 1_000_003 + epoch)).tolist()
        assert s.batch(step) == order[4 * i:4 * (i + 1)]


def test_two_ranks_draw_the_micro_batches_of_one_process_that_accumulates_two():
    one = _micro_batches(StepBatchSampler(23, 3, seed=1, accumulate=2), steps=9)
    ranks = [_micro_batches(StepBatchSampler(23, 3, seed=1, rank=r, world_size=2), steps=9) for r in (0, 1)]
    assert ranks[0] == one[0::2] and ranks[1] == one[1::2]
    for a, b in zip(*ranks):  # the slots of one step never share an example
        assert len(a) == len(b) == 3 and not set(a) & set(b)


def test_slots_of_a_step_make_up_its_global_batch():
    samplers = [StepBatchSampler(40, 2, seed=0, rank=r, world_size=2, accumulate=3) for r in (0, 1)]
    for step in range(7):
        slots = {micro * 2 + s.rank: s.batch(step, micro) for s in samplers for micro in range(3)}
        assert [i for slot in sorted(slots) for i in slots[slot]] == samplers[0].global_batch(step)


def test_a_run_started_at_a_step_continues_the_sequence():
    full = _micro_batches(StepBatchSampler(17, 2, seed=5, rank=1, world_size=2, accumulate=2), steps=8)
    resumed = _micro_batches(StepBatchSampler(17, 2, seed=5, start_step=3, rank=1, world_size=2, accumulate=2), steps=5)
    assert resumed == full[3 * 2:]


def test_the_micro_batch_shrinks_to_fit_a_small_data_set_and_refuses_an_impossible_split():
    assert StepBatchSampler(5, 8, seed=0, world_size=2).batch_size == 2  # 5 examples, 2 slots
    with pytest.raises(ValueError, match="3 examples cannot fill 2 ranks x 2 accumulated"):
        StepBatchSampler(3, 1, seed=0, world_size=2, accumulate=2)
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        StepBatchSampler(8, 1, seed=0, rank=2, world_size=2)


def test_every_slot_of_every_step_draws_its_own_dropout_seed():
    seeds = {step_seed(0, step, slot) for step in range(200) for slot in range(16)}
    assert len(seeds) == 200 * 16
    assert step_seed(7, 11) == step_seed(7, 11, 0)  # one process without accumulation: slot 0
