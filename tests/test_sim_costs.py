"""Cost table: the shipped profile, lookups, scaling, file errors, and `wansim calibrate`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.cli import main
from wansim.sim.costs import EXCHANGES, CostProfileError, CostTable, strongswan_exchange_s


def test_per_exchange_cost_is_the_strongswan_fit():
    # (1.3 - 0.3 + 2.5 - 1.2) ms over 2 x 4 exchanges
    assert strongswan_exchange_s() == pytest.approx(0.2875e-3)


def test_default_profile_is_a_measurement_with_provenance():
    table = CostTable.default()
    prov = table.profile.provenance
    assert prov["cpu"] and prov["cryptography"] and prov["measured_at"]
    for token in ("x25519", "ecp384", "mlkem768"):
        for op in ("initiate", "respond", "finish"):
            assert 1e-6 < table.operation_s(token, op) < 5e-3
    # P-384 costs more than X25519 (digest §8.2)
    assert table.operation_s("ecp384", "respond") > table.operation_s("x25519", "respond")
    assert all(table.exchange_cost_s(x) == pytest.approx(0.2875e-3) for x in EXCHANGES)


def test_responder_handshake_cost_is_near_strongswan():
    """x25519+mlkem768 responder: 4 exchanges + respond ops ≈ strongSwan's 1.3 ms (±30 %)."""
    table = CostTable.default()
    cost = sum(table.exchange_cost_s(x) for x in EXCHANGES if x in {
        "IKE_SA_INIT", "IKE_INTERMEDIATE", "IKE_AUTH", "INFORMATIONAL"})  # fmt: skip
    cost += table.cost_s([("x25519", "respond"), ("mlkem768", "respond")])
    assert cost == pytest.approx(1.3e-3, rel=0.3)


def test_scaling_multiplies_every_cost():
    table = CostTable.default()
    slow = table.scaled(2.0).scaled(1.5)
    assert slow.operation_s("x25519", "finish") == pytest.approx(
        3 * table.operation_s("x25519", "finish")
    )
    assert slow.exchange_cost_s("IKE_AUTH") == pytest.approx(3 * table.exchange_cost_s("IKE_AUTH"))
    with pytest.raises(CostProfileError, match="positive"):
        table.scaled(0)


def test_missing_cost_and_bad_files_are_clear_errors(tmp_path):
    table = CostTable.default()
    with pytest.raises(CostProfileError, match="no cost for frodo respond"):
        table.operation_s("frodo", "respond")
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"name": "x", "backend": "pyca", "operations_s": {"x25519": {
        "initiate": -1}}, "colour": 1}))  # fmt: skip
    with pytest.raises(CostProfileError) as info:
        CostTable.load(bad)
    assert "operations_s.x25519.initiate" in str(info.value) and "colour" in str(info.value)
    with pytest.raises(CostProfileError, match="cannot read"):
        CostTable.load(tmp_path / "absent.json")


def test_round_trip_through_json():
    table = CostTable.default().scaled(0.5)
    again = CostTable.from_json(table.to_json())
    assert again.operation_s("mlkem768", "respond") == table.operation_s("mlkem768", "respond")


def test_calibrate_cli_writes_a_loadable_profile(tmp_path):
    out = tmp_path / "costs.json"
    result = CliRunner().invoke(
        main,
        ["calibrate", "--method", "x25519", "--batches", "3", "--name", "t", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    table = CostTable.load(out)
    assert table.name == "t" and table.profile.backend == "pyca"
    assert set(table.profile.operations_s) == {"x25519"}
    assert 1e-6 < table.operation_s("x25519", "respond") < 5e-3


def test_calibrate_cli_unknown_method_is_bad_input(tmp_path):
    result = CliRunner().invoke(
        main, ["calibrate", "--method", "frodo", "-o", str(tmp_path / "c.json")]
    )
    assert result.exit_code == 2
    assert "unknown key-exchange method" in result.output


def test_calibrate_api_refuses_a_backend_that_runs_no_key_exchange():
    from wansim.crypto import METHODS, BackendUnavailable, unavailable_reason
    from wansim.sim.calibration import calibrate

    if any(unavailable_reason(token, "liboqs") is None for token in METHODS):
        pytest.skip("native liboqs is present here, so backend='liboqs' runs key exchanges")
    with pytest.raises(BackendUnavailable, match="runs no key exchange here.*OQS_INSTALL_PATH"):
        calibrate(backend="liboqs", batches=3, min_batch_s=1e-4)


def test_calibrate_api_with_pyca_measures_key_exchanges_and_signatures():
    from wansim.sim.calibration import measure_operations

    costs, used = measure_operations(backend="pyca", batches=3, min_batch_s=1e-4)
    assert costs["x25519"].keys() == {"initiate", "respond", "finish"}
    assert used["x25519"] == "pyca" and all(v > 0 for v in costs["x25519"].values())


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_any_profile_text_loads_or_raises_cost_profile_error(text):
    try:
        table = CostTable.from_json(text)
    except CostProfileError:
        return
    for (token, op), seconds in table._ops.items():  # a table that loads is usable
        assert table.operation_s(token, op) == seconds > 0


@settings(deadline=None, max_examples=100)
@given(
    st.dictionaries(
        st.sampled_from(["x25519", "mlkem768", "ecp384"]),
        st.dictionaries(st.sampled_from(["initiate", "respond", "finish"]),
                        st.floats(min_value=1e-9, max_value=1.0), min_size=1),
        min_size=1,
    ),
    st.floats(min_value=0.01, max_value=100),
)  # fmt: skip
def test_profiles_round_trip_and_scale(ops, factor):
    text = json.dumps({"name": "p", "backend": "pyca", "operations_s": ops})
    table = CostTable.from_json(text).scaled(factor)
    again = CostTable.from_json(table.to_json())
    for token, by_op in ops.items():
        for op, seconds in by_op.items():
            assert again.operation_s(token, op) == pytest.approx(seconds * factor)
