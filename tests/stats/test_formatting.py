"""format_table(): table, csv, json and markdown renderings of a statistics table."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from compare.errors import ConfigError
from compare.stats.formatting import format_table
from compare.stats.ranking import leaderboard
from tests.stats._synth import Sim, tidy_frame


def _board() -> pd.DataFrame:
    frame = tidy_frame(np.random.default_rng(61), 12, {"fast|v2": Sim(), "slow": Sim()})
    return leaderboard(frame, "score_quality")


def test_csv_and_json_round_trip_with_the_index_as_a_column() -> None:
    board = _board()
    back = pd.read_csv(io.StringIO(format_table(board, "csv")))
    assert list(back.columns) == ["deployment", *board.columns]
    np.testing.assert_allclose(back["mean"], board["mean"])
    records = json.loads(format_table(board, "json"))
    assert [r["deployment"] for r in records] == ["fast|v2", "slow"]
    assert records[0]["mean"] == pytest.approx(board["mean"].iloc[0], rel=1e-9)


def test_markdown_pipe_table() -> None:
    text = format_table(_board(), "markdown")
    lines = text.splitlines()
    assert lines[0].startswith("| deployment | n_prompts | n_obs | mean |")
    assert lines[1].startswith("| --- | ---: | ---: | ---: |")  # numbers right-aligned
    assert lines[2].startswith("| fast\\|v2 | 12 | 12 |")  # a pipe in a name is escaped
    assert len(lines) == 4 and all(line.count(" | ") == lines[0].count(" | ") for line in lines)


def test_plain_table_rounds_and_blanks_missing() -> None:
    frame = pd.DataFrame({"a": ["x", "y"], "p": [0.000123456, np.nan], "ok": [True, False]})
    text = format_table(frame)
    assert "0.0001235" in text and "nan" not in text.lower()
    assert text.splitlines()[1].split() == ["x", "0.0001235", "yes"]
    assert format_table(frame.iloc[:0]) == "(no rows)\n"


def test_unknown_format() -> None:
    with pytest.raises(ConfigError, match="format 'html'; choose one of table, csv, json"):
        format_table(_board(), "html")
