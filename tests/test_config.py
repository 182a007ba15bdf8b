import pytest

from healthgpt_lite.config import PRESETS, PROFILES, build_config, config_from_dict, parse_overrides
from healthgpt_lite.errors import ConfigError


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_preset_and_profile_builds(preset, profile):
    cfg = build_config(preset, profile)
    assert cfg.preset == preset and cfg.profile == profile
    assert cfg.vq.num_tokens == (cfg.vq.resolution // cfg.vq.downsample) ** 2


def test_m3_matches_the_released_shapes():
    cfg = build_config("m3")
    assert cfg.vision.num_tokens == 576  # 24 x 24 patches of CLIP ViT-L/14-336
    assert cfg.vq.num_tokens == 1024 and cfg.vq.n_embed == 8192  # VQGAN f8-8192 on 256 px
    assert cfg.llm.hidden_size == 3072
    assert cfg.lora.comprehension.rank == 64 and cfg.lora.comprehension.scale == 8.0  # alpha / r = 128 / 16
    assert cfg.lora.generation.rank == 256 and cfg.lora.generation.scale == 8.0


def test_overrides_from_dict_and_strings():
    cfg = build_config("tiny", "smoke", {"vq.n_embed": 256, "vq.ch_mult": [1, 2, 2, 2]})
    assert cfg.vq.n_embed == 256 and cfg.vq.ch_mult == (1, 2, 2, 2) and cfg.vq.downsample == 8
    cfg = build_config("tiny", "smoke", ["lora.generation.alpha=16", "llm.tokenizer_path=null"])
    assert cfg.lora.generation.alpha == 16.0 and cfg.llm.tokenizer_path is None


@pytest.mark.parametrize("overrides, fragment", [
    ({"vq.n_embeds": 3}, "did you mean vq.n_embed"),
    ({"nope": 1}, "unknown config key 'nope'"),
    ({"vq": 1}, "is a section"),
    ({"vq.n_embed": "many"}, "expected int"),
    ({"vq.n_embed": 2.5}, "expected int"),
    ({"data.languages": "en"}, "expected"),
    ({"vision.patch_size": 7}, "not a multiple"),
    ({"lora.comprehension.rank": 10}, "multiple of lora.comprehension.experts"),
    ({"vq.quantizer": "kmeans"}, "choose 'vq', 'ema' or 'gumbel'"),
    ({"vision.comp_layer": -9}, "not a hidden-state index"),
    (["vq.n_embed"], "key=value"),
])
def test_bad_overrides_name_the_problem(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("'", ".")):
        build_config("tiny", "smoke", overrides)


def test_unknown_preset_and_profile():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build_config("huge")
    with pytest.raises(ConfigError, match="unknown profile 'slow'"):
        build_config("tiny", "slow")


def test_hash_is_stable_and_section_specific():
    a, b = build_config("tiny", "smoke"), build_config("tiny", "smoke", {"vq.n_embed": 256})
    assert a.hash("data") == b.hash("data")  # the data did not change
    assert a.hash("vq") != b.hash("vq")
    assert a.hash() == build_config("tiny", "smoke").hash()


def test_round_trip_through_dict():
    cfg = build_config("small", "cpu", {"vq.n_embed": 2048}, seed=3)
    again = config_from_dict(cfg.to_dict())
    assert again == cfg


def test_parse_overrides_yaml_values():
    assert parse_overrides(["a.b=1e-3", "c=[1, 2]", "d=true"]) == {"a.b": 1e-3, "c": [1, 2], "d": True}


def test_every_preset_writes_out_every_shape():
    """No preset hides its shapes in the dataclass defaults: each names every key tiny names."""
    from healthgpt_lite.config import SHAPE_KEYS, _flatten

    wanted = {k for k, _ in _flatten(PRESETS["tiny"])}
    for name, preset in PRESETS.items():
        assert {k for k, _ in _flatten(preset)} == wanted, name
    assert set(SHAPE_KEYS) == {k.split(".")[0] for k in wanted}


def test_tiny_preset_is_what_the_defaults_say():
    """The written-out tiny preset and the dataclass defaults cannot drift apart."""
    from healthgpt_lite.config import Config, _flatten, _get_dotted

    defaults = Config().to_dict()
    for key, value in _flatten(PRESETS["tiny"]):
        assert _get_dotted(defaults, key) == value, key


def test_l14_is_m3_plus_its_differences():
    m3, l14 = build_config("m3"), build_config("l14")
    assert (l14.vision, l14.vq, l14.lora.generation) == (m3.vision, m3.vq, m3.lora.generation)
    assert l14.llm.num_kv_heads == 10 and l14.lora.comprehension.rank == 32 and l14.train.lr_scale == 1.0


def test_preset_comments_give_the_real_parameter_counts():
    """The counts written beside each preset in config.py are what the meta-device model has."""
    import inspect

    from healthgpt_lite import config
    from healthgpt_lite.scale.plan import parameter_summary

    source = inspect.getsource(config)
    for name in PRESETS:
        assert f"# {name} parameters: {parameter_summary(build_config(name))}\n" in source, name


def test_config_command_prints_yaml_that_rebuilds_the_config(capsys):
    import yaml

    from healthgpt_lite.cli import main

    assert main(["config", "--preset", "small", "--profile", "gpu", "--set", "vq.n_embed=2048"]) == 0
    out = capsys.readouterr().out
    assert config_from_dict(yaml.safe_load(out)) == build_config("small", "gpu", {"vq.n_embed": 2048})
    assert out.rstrip().splitlines()[-1].startswith("# small parameters: ViT 14.37M")
    assert main(["config", "--section", "nope"]) == 2
    assert "unknown section 'nope'" in capsys.readouterr().err
