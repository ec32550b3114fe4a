"""Experiment schema: durations, profile defaults, dotted paths with TOML lines, grids."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.experiment import (
    ExperimentConfig,
    ExperimentError,
    load_experiment,
    parse_duration,
    parse_experiment,
    with_values,
)
from wansim.experiment.durations import format_duration
from wansim.experiment.errors import key_lines

MINIMAL = """
[topology]
only = ["FRA", "AMS", "LHR"]
[sites]
count = 5
"""


# ------------------------------------------------------------------------------ durations
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0), ("4h", 14400.0), ("30d", 2592000.0), ("1h30m", 5400.0),
        ("250ms", 0.25), ("1.5d", 129600.0), ("6 min", 360.0), ("90", 90.0),
        (" 2m ", 120.0), (0, 0.0), (3.5, 3.5), ("1w", 604800.0), ("1e3s", 1000.0),
    ],
)
def test_parse_duration_accepts_the_usual_spellings(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["", "h", "4 hours", "-5s", "-1", "4h-", "1y", "nan", True, None, [1], float("inf"),
            -0.5, "4h 3x"]
)
def test_parse_duration_refuses_with_a_reason(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@settings(deadline=None, max_examples=200)
@given(st.text(max_size=12))
def test_parse_duration_only_ever_raises_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert seconds >= 0 and math.isfinite(seconds)


@settings(deadline=None, max_examples=200)
@given(st.integers(min_value=0, max_value=10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


# ------------------------------------------------------------------------------ defaults
def test_strongswan_defaults_and_derived_rand_times() -> None:
    config = parse_experiment(MINIMAL)
    ike = config.ike
    assert (ike.rekey_time, ike.rand_time) == (14400.0, 1440.0)  # 4h, 10 %
    assert (ike.child.rekey_time, ike.child.life_time, ike.child.rand_time) == (3600, 3960, 360)
    assert (ike.retransmit_timeout, ike.retransmit_base, ike.retransmit_tries) == (4.0, 1.8, 5)
    assert ike.dpd_delay == 0 and ike.fragmentation and ike.fragment_size == 1280


def test_rand_time_follows_an_explicit_rekey_time_like_strongswan() -> None:
    config = parse_experiment(MINIMAL + '[ike]\nrekey_time = "1h"\n[ike.child]\nrekey_time="20m"')
    assert config.ike.rand_time == 360.0
    assert config.ike.child.life_time == 1320.0 and config.ike.child.rand_time == 120.0


def test_site_profile_fills_only_what_the_file_leaves_out() -> None:
    config = parse_experiment(MINIMAL + '[ike]\nprofile = "fortios"\ndpd_delay = "5s"')
    assert config.ike.rekey_time == 86400 and config.ike.child.rekey_time == 43200
    assert config.ike.rand_time == 0 and config.ike.fragment_size == 1200
    assert config.ike.dpd_delay == 5.0  # explicit wins
    cisco = parse_experiment(MINIMAL + '[ike]\nprofile = "cisco"')
    assert not cisco.ike.fragmentation and cisco.ike.child.life_time == 3600


def test_sweep_point_recomputes_derived_defaults() -> None:
    config = parse_experiment(MINIMAL)
    point = with_values(config, {"ike.child.rekey_time": 600, "pop.cores": 2})
    assert point.ike.child.rand_time == 60.0 and point.pop.cores == 2
    assert config.ike.child.rand_time == 360.0  # the base is untouched (frozen)


def test_config_is_frozen_and_json_round_trips() -> None:
    config = parse_experiment(MINIMAL + '[anycast]\nconvergence = "2s"')
    with pytest.raises(ValueError):
        config.run.duration = 5.0  # type: ignore[misc]
    again = ExperimentConfig.model_validate_json(config.model_dump_json())
    assert again.model_dump() == config.model_dump()
    assert config.anycast.convergence.kind == "fixed" and config.anycast.convergence.value == 2


def test_every_field_has_a_description() -> None:
    missing = []

    def walk(model: type, prefix: str) -> None:
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            sub = field.annotation
            for candidate in (sub, *getattr(sub, "__args__", ())):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    walk(candidate, f"{prefix}{name}.")

    walk(ExperimentConfig, "")
    assert missing == []


# ------------------------------------------------------------------------------ errors
def test_one_error_lists_every_problem_with_path_and_line(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        MINIMAL
        + '[ike]\nproposals = ["aes256gcm16-prfsha384-x25519-ke1_mlkem77"]\nbogus = 1\n'
        + '[ike.child]\nrekey_time = "-5m"\n[run]\nduration = "soon"\n'
    )
    with pytest.raises(ExperimentError) as caught:
        load_experiment(path)
    found = {p.path: p.line for p in caught.value.problems}
    assert found == {
        "ike.proposals": 7, "ike.bogus": 8, "ike.child.rekey_time": 10, "run.duration": 12,
    }
    assert str(path) in str(caught.value) and "mlkem77" in str(caught.value)


def test_unknown_pop_region_and_grid_values_are_found(tmp_path) -> None:
    text = MINIMAL.replace('"LHR"', '"LHR", "ZZZ"') + (
        '[[failures.scheduled]]\npop = "LAX"\nat = "1m"\nduration = "1m"\n'
        '[[failures.regional]]\nregion = "Asia"\nat = "1m"\nduration = "1m"\n'
    )
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(text)
    paths = [p.path for p in caught.value.problems]
    assert paths == ["topology.only[3]", "failures.scheduled[0].pop", "failures.regional[0].region"]

    grid = MINIMAL + (
        '[sweep.grid]\n"pop.cores" = [1, 0]\n'
        '"ike.proposals" = [["aes128gcm16-prfsha256-x25519"], ["aes128gcm16-prfsha256-x2559"]]'
    )
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(grid)
    assert [(p.path, p.line) for p in caught.value.problems] == [
        ('sweep.grid."pop.cores"[1]', 7), ('sweep.grid."ike.proposals"[1]', 8),
    ]


def test_overrides_are_toml_values_or_bare_words() -> None:
    config = parse_experiment(
        MINIMAL, overrides=["pop.cores=8", "ike.profile=cisco", 'topology.only=["FRA"]',
                            "run.duration=2h"]
    )
    assert config.pop.cores == 8 and config.ike.profile == "cisco"
    assert config.topology.only == ("FRA",) and config.run.duration == 7200
    with pytest.raises(ExperimentError, match="pop.corez"):
        parse_experiment(MINIMAL, overrides=["pop.corez=8"])
    swept = parse_experiment(MINIMAL, overrides=["sweep.grid.pop.cores=[1, 2]"])
    assert swept.sweep.grid == {"pop.cores": [1, 2]}
    with pytest.raises(ExperimentError, match="KEY.PATH=VALUE"):
        parse_experiment(MINIMAL, overrides=["pop.cores"])


def test_key_lines_handles_quoted_keys_and_arrays_of_tables() -> None:
    lines = key_lines('a = 1\n[sweep.grid]\n"pop.cores" = [1]\n[[f.s]]\np = 1\n[[f.s]]\np = 2\n')
    assert lines[("sweep", "grid", "pop.cores")] == 3
    assert lines[("f", "s", 1, "p")] == 7


# ------------------------------------------------------------------------------ fuzzing
_TOML_BITS = st.sampled_from([
    "[topology]\n", '[sites]\ncount = 5\n', "[ike]\n", "[[failures.scheduled]]\n",
    'pop = "FRA"\n', 'at = "1m"\n', 'duration = "1m"\n', "cores = 2\n", '"a.b" = [1]\n',
    "[sweep.grid]\n", '"pop.cores" = [1, 2]\n', "x = \n", "[run\n", 'rekey_time = "4h"\n',
    '"""\n', "# comment\n", "= 3\n", "only = []\n", "[pop]\n", "profile = 1\n",
])


@settings(deadline=None, max_examples=150)
@given(st.lists(_TOML_BITS, max_size=12), st.text(max_size=20))
def test_parse_experiment_raises_only_experiment_error(bits: list[str], noise: str) -> None:
    text = "".join(bits) + noise
    try:
        config = parse_experiment(text)
    except ExperimentError as exc:
        assert exc.problems and all(isinstance(p.path, str) for p in exc.problems)
    else:
        assert isinstance(config, ExperimentConfig)


@settings(deadline=None, max_examples=200)
@given(st.text(max_size=200))
def test_key_lines_never_raises_and_points_inside_the_text(text: str) -> None:
    count = len(text.splitlines())
    assert all(1 <= line <= count for line in key_lines(text).values())


@settings(deadline=None, max_examples=100)
@given(st.lists(st.text(max_size=20), max_size=4))
def test_overrides_raise_only_experiment_error(items: list[str]) -> None:
    try:
        parse_experiment(MINIMAL, overrides=items)
    except ExperimentError:
        pass


# ------------------------------------------------------------------------------ distributions
@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "fixed", "value": "90s"},
        {"kind": "exponential", "mean": "30d"},
        {"kind": "lognormal", "median": "20m", "sigma": 1.0},
        {"kind": "uniform", "low": "1s", "high": "9s"},
        {"kind": "weibull", "scale": "2h", "shape": 1.5},
    ],
)
def test_distribution_samples_match_their_mean(spec: dict) -> None:
    import numpy as np

    from wansim.experiment.config import Distribution

    dist = Distribution.model_validate(spec)
    draws = dist.sample(np.random.default_rng(11), 40_000)
    assert draws.min() >= 0
    assert float(draws.mean()) == pytest.approx(dist.mean_s(), rel=0.03)


def test_default_convergence_is_median_3s_with_80_percent_within_10s() -> None:
    from scipy import stats

    convergence = parse_experiment(MINIMAL).anycast.convergence
    assert convergence.kind == "lognormal" and convergence.median == 3.0
    within_10s = stats.lognorm.cdf(10, convergence.sigma, scale=convergence.median)
    assert within_10s == pytest.approx(0.80, abs=0.005)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "lognormal", "median": "3s"}, "missing sigma"),
        ({"kind": "fixed", "value": "1s", "mean": "2s"}, "not used: mean"),
        ({"kind": "uniform", "low": "9s", "high": "1s"}, "low <= high"),
        ({"kind": "exponential", "mean": 0}, "positive"),
    ],
)
def test_distribution_parameters_must_fit_the_kind(spec: dict, message: str) -> None:
    from pydantic import ValidationError

    from wansim.experiment.config import Distribution

    with pytest.raises(ValidationError, match=message):
        Distribution.model_validate(spec)


def test_bare_pop_list_name_means_the_bundled_topology(tmp_path) -> None:
    text = '[topology]\npops = "europe5"\n[sites]\ncount = 3\n'
    config = parse_experiment(text, base_dir=tmp_path)
    assert config.topology.pops.endswith("topologies/europe5.csv")
    with pytest.raises(ExperimentError, match="unknown POP code 'SYD'"):
        parse_experiment(text + '[[failures.scheduled]]\npop = "SYD"\nat = 1\nduration = 1\n',
                         base_dir=tmp_path)
    (tmp_path / "europe5").write_text("a local file of that name wins")
    with pytest.raises(ExperimentError, match="topology.pops"):
        parse_experiment(text, base_dir=tmp_path)
