"""The notebooks' shared ``setup(...)`` cell: under ``smoke`` it says, once, that nothing is learned."""
from healthgpt_lite.course.notebook import SMOKE_NOTICE, setup


def test_smoke_says_once_that_nothing_is_learned(tmp_path, capsys):
    run = setup("smoke", "tiny", 0, str(tmp_path))
    out = capsys.readouterr().out
    assert out.count(SMOKE_NOTICE) == 1
    assert "Nothing below is learned" in out
    assert run.progress is False


def test_cpu_says_nothing(tmp_path, capsys):
    run = setup("cpu", "tiny", 0, str(tmp_path))
    assert "learned" not in capsys.readouterr().out
    assert run.progress is True
    assert not any(tmp_path.iterdir())  # setup only decides paths; it trains and writes nothing
