"""The cost table's memo of sums: a lookup shortcut that never changes an answer."""

from __future__ import annotations

import pytest

from wansim.sim.costs import CostProfileError, CostTable


def test_memoised_sum_equals_the_plain_sum_and_stays_per_table():
    table = CostTable.default()
    ops = (("x25519", "respond"), ("mlkem768", "respond"))
    plain = table.cost_s(list(ops), "IKE_SA_INIT")  # a list is never memoised
    assert table.cost_s(ops, "IKE_SA_INIT") == plain
    assert table.cost_s(ops, "IKE_SA_INIT") == plain  # second call: from the memo
    assert table.cost_s(ops) == plain - table.exchange_cost_s("IKE_SA_INIT")
    assert table.scaled(2.0).cost_s(ops, "IKE_SA_INIT") == pytest.approx(2 * plain)
    assert table.cost_s(iter(ops), "IKE_SA_INIT") == plain  # an iterator is summed, not kept


def test_a_missing_operation_raises_every_time():
    table = CostTable.default()
    for _ in range(2):
        with pytest.raises(CostProfileError, match="no cost for nope initiate"):
            table.cost_s((("nope", "initiate"),), "IKE_SA_INIT")
