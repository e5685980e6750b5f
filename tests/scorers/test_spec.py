"""CLI scorer specs, did-you-mean, the bundled eval set and the defaults chosen from its tags."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from compare.errors import ConfigError
from compare.scorers import (
    Bleu,
    Judge,
    Numeric,
    PairwiseScorer,
    Regex,
    Similarity,
    default_scorers_for,
    eval_set,
    parse_scorer_spec,
    score_frame_sync,
)


def test_every_text_builtin_parses_by_name() -> None:
    for name in ("exact", "includes", "f1", "rouge", "chrf", "bleu", "edit_similarity",
                 "json_valid", "choice", "numeric"):
        assert parse_scorer_spec(name).name == name
    assert isinstance(parse_scorer_spec("BLEU"), Bleu)
    assert parse_scorer_spec("em").name == "exact"


def test_options() -> None:
    n = parse_scorer_spec("numeric:rel=0.01,abs=0.5,name=num_loose,tags=arithmetic;units")
    assert isinstance(n, Numeric) and (n.rel, n.abs, n.name) == (0.01, 0.5, "num_loose")
    assert n.tags == frozenset({"arithmetic", "units"})
    assert parse_scorer_spec("f1:threshold=0.8").threshold == 0.8
    assert parse_scorer_spec("includes:normalize=false").normalize is False
    r = parse_scorer_spec("regex:Answer: (\\w+), done=yes")
    assert isinstance(r, Regex) and r.pattern.pattern == "Answer: (\\w+), done=yes"


def test_model_specs() -> None:
    j = parse_scorer_spec(
        "judge:gpt-4o:scale=pass_fail,name=strict,rubric=Is it right, short, kind?")
    assert isinstance(j, Judge) and (j.judge, j.scale, j.name) == ("gpt-4o", "pass_fail", "strict")
    assert j.rubric == "Is it right, short, kind?" and "Is it right, short, kind?" in j.template
    assert isinstance(parse_scorer_spec("pairwise:gpt-4o"), PairwiseScorer)
    s = parse_scorer_spec("similarity:text-embedding-3-small:threshold=0.8")
    assert isinstance(s, Similarity) and (s.embed, s.threshold) == ("text-embedding-3-small", 0.8)


@pytest.mark.parametrize(("spec", "message"), [
    ("exactt", "unknown scorer 'exactt' (did you mean 'exact'?)"),
    ("rogue", "did you mean 'rouge'?"),
    ("numeric:rell=0.1", "unknown option 'rell' (did you mean 'rel'?)"),
    ("numeric:rel", "expected key=value"),
    ("judge", "judge needs a deployment"),
    ("regex:", "regex needs a pattern"),
    ("json_schema", "json_schema needs a schema file"),
    ("", "non-empty"),
    ("f1:name=bad name", "cannot be a column suffix"),
])
def test_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("?", r"\?")):
        parse_scorer_spec(spec)


def test_json_schema_spec_reads_a_file(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "array"}))
    assert parse_scorer_spec(f"json_schema:{path}").score_text("[1]", None, None).value == 1.0


def test_eval_set_families_and_default_scorers() -> None:
    prompts = eval_set()
    assert 35 <= len(prompts) <= 45
    families = {"arithmetic", "capital", "unit_conversion", "multiple_choice", "json"}
    for p in prompts:
        assert p.reference is not None and len(set(p.tags) & families) == 1, p.id
    chosen = {s.name: s for s in default_scorers_for(prompts)}
    assert set(chosen) == {"numeric", "includes", "choice", "json_valid"}
    assert chosen["numeric"].tags == frozenset({"numeric"})


def test_eval_set_references_score_perfectly_and_wrong_answers_do_not() -> None:
    prompts = eval_set()
    rows = [(p.id, dep, 0, "ok", p.reference if dep == "oracle" else "I am not sure, sorry.")
            for p in prompts for dep in ("oracle", "unsure")]
    frame = pd.DataFrame(rows, columns=["prompt_id", "deployment", "repeat", "status", "output"])
    scored = score_frame_sync(frame, prompts, default_scorers_for(prompts))
    by_dep = scored.scores.groupby(["deployment", "scorer"], observed=True)["value"].mean()
    assert (by_dep["oracle"] == 1.0).all()
    assert (by_dep["unsure"] == 0.0).all()
    # each scorer scores exactly its family
    counts = scored.scores.dropna(subset=["value"]).groupby("scorer", observed=True).size() / 2
    tag_counts = {t: sum(t in p.tags for p in prompts) for t in counts.index}
    assert counts.to_dict() == tag_counts


def test_defaults_without_scorer_tags() -> None:
    from compare.prompts import load_prompts

    prompts = load_prompts([{"prompt": "hi", "reference": "hello"}, {"prompt": "poem"}])
    assert [s.name for s in default_scorers_for(prompts)] == ["f1", "includes"]
    assert default_scorers_for(load_prompts(["no references here"])) == []
