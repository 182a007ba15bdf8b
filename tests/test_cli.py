import json

from healthgpt_lite.cli import main


def test_data_generate(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["data", "generate", "--out", str(out), "--profile", "smoke", "--set", "data.n_patients=5"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert sum(meta["n_patients"].values()) == 5


def test_bad_override_is_one_clear_line(tmp_path, capsys):
    assert main(["data", "generate", "--out", str(tmp_path), "--set", "data.n_patient=5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown config key 'data.n_patient'") and "Traceback" not in err


def test_notebooks_check_passes():
    assert main(["notebooks", "check"]) == 0
