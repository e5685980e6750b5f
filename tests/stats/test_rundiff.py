"""diff(): two runs paired by prompt and deployment; significantly_worse() for a CI gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from compare.errors import ConfigError
from compare.stats.rundiff import diff, significantly_worse, worse_rows
from tests.stats._synth import Sim, per_prompt, tidy_frame


def _runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    # The same prompts answered again: "m1" got better and 1.5× slower, "m2" only re-drew its
    # noise, "gone" and "added" are each in one run only.
    rng = np.random.default_rng(51)
    old = tidy_frame(rng, 40, {"m1": Sim(), "m2": Sim(), "gone": Sim()})
    new = old[old["deployment"] != "gone"].copy()
    m1 = new["deployment"] == "m1"
    new["score_quality"] += np.where(m1, 0.3, 0.0) + rng.normal(0, 0.2, len(new))
    new["latency_s"] *= np.where(m1, 1.5, 1.0) * np.exp(rng.normal(0, 0.2, len(new)))
    added = old[old["deployment"] == "m2"].assign(deployment="added")
    return old, pd.concat([new, added], ignore_index=True)


def test_pairs_by_prompt_and_deployment() -> None:
    old, new = _runs()
    table = diff(old, new, metrics=["score_quality", "latency_s"])
    assert list(table.columns[:4]) == ["deployment", "a", "b", "metric"]
    assert list(table["deployment"]) == ["m1", "m1", "m2", "m2"]
    assert set(table["a"]) == {"old"} and set(table["b"]) == {"new"}
    row = table[(table["deployment"] == "m1") & (table["metric"] == "score_quality")].iloc[0]
    x_old, x_new = per_prompt(old, "m1", "score_quality"), per_prompt(new, "m1", "score_quality")
    assert row["p_value"] == pytest.approx(stats.ttest_rel(x_new, x_old).pvalue)
    assert row["diff"] == pytest.approx((x_new - x_old).mean()) and row["n_pairs"] == 40
    np.testing.assert_allclose(table["p_adj"], multipletests(table["p_value"], method="holm")[1])
    assert table.attrs["unmatched"] == ["added", "gone"]
    same = table[(table["deployment"] == "m2") & (table["metric"] == "score_quality")].iloc[0]
    assert not same["significant"]


def test_significantly_worse_respects_direction() -> None:
    old, new = _runs()
    table = diff(old, new, metrics=["score_quality", "latency_s"])
    assert significantly_worse(table, "latency_s")  # 1.5× slower: worse, lower is better
    assert not significantly_worse(table, "score_quality")  # higher and better
    assert list(worse_rows(table)["metric"]) == ["latency_s"]
    back = diff(new, old, metrics=["score_quality", "latency_s"])
    assert significantly_worse(back, "score_quality") and not significantly_worse(back,
                                                                                  "latency_s")
    with pytest.raises(ConfigError, match="Did you mean 'latency_s'"):
        significantly_worse(table, "latency")


def test_no_common_deployment() -> None:
    old, new = _runs()
    with pytest.raises(ConfigError, match="share no deployment name"):
        diff(old[old["deployment"] == "gone"], new)
