"""Report edge cases met in user-acceptance runs of the bundled experiments.

A one-POP world (perth_second_addke: every grid point keeps only SYD or SIN) moves no site
anywhere when its POP fails; a sweep over booleans (loss_fragmentation) leaves missing cells
in the PDF's tables. Both used to end `wansim report` with an internal error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from wansim.report.capacity import absorbed_shares
from wansim.report.render import _cell, _table_pages


def test_absorbed_shares_when_no_site_can_move() -> None:
    strings = pd.ArrowDtype(pa.string())
    moves = pd.DataFrame({"site": ["perth-cbd", "fremantle"], "pop": ["SYD", "SYD"],
                          "to_pop": [None, None]}).astype(strings)  # fmt: skip
    handshakes = pd.DataFrame({"site": ["perth-cbd", "fremantle"], "round_trips": [3, 4]})
    shares = absorbed_shares(moves, handshakes)
    assert shares.empty and list(shares.columns) == ["failed_pop", "pop", "share"]


def test_absorbed_shares_weights_by_round_trips() -> None:
    moves = pd.DataFrame({"site": ["a", "b", "c"], "pop": ["FRA"] * 3,
                          "to_pop": ["AMS", "AMS", "WAW"]})  # fmt: skip
    handshakes = pd.DataFrame({"site": ["a", "b", "c"], "round_trips": [2, 2, 4]})
    shares = absorbed_shares(moves, handshakes).set_index("pop")["share"]
    assert shares.to_dict() == {"AMS": 0.5, "WAW": 0.5}


def test_pdf_cells_show_missing_values_like_the_html_table() -> None:
    assert _cell(np.nan) == "–" and _cell(None) == "–"
    assert _cell(True) == "True" and _cell(0.25) == "0.25"
    assert _cell("x" * 60) == "x" * 45 + "…"
    table = pd.DataFrame({"grid": [True, None], "p99_s": [0.1, np.nan]})
    pages = list(_table_pages("Sweep", "per point", table))
    assert len(pages) == 1
