"""Every parameter group of the stage table has a box in the architecture diagram, so every
stage (notebooks 06-08 draw them) can be drawn."""
import pytest

from healthgpt_lite.training.stages import GROUPS, STAGES
from healthgpt_lite.viz.diagrams import GROUP_BOXES, stage_figure


def test_every_group_has_a_box():
    assert set(GROUPS) <= set(GROUP_BOXES)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_draws(name):
    assert stage_figure(STAGES[name]).axes
