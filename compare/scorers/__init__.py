"""Scorers: how well each deployment answered, next to how fast.

    from compare import scorers
    chosen = ["exact", "f1", scorers.numeric(rel=0.01)]
    scored = scorers.score_frame_sync(results.frame, prompts, chosen)
    scored.columns          # score_exact, score_f1, score_numeric aligned to the frame

Built-ins (lower-case names are the constructors):

======================  =========  ===============================================================
exact()                 binary     SQuAD-normalised output == reference
includes()              binary     the reference's words appear in the output, in order
f1()                    continuous SQuAD token F1
regex(pattern)          binary     pattern found; a capture group becomes `answer`
numeric(rel=, abs=)     binary     last number in the output ≈ the reference's
choice()                binary     multiple-choice letter ("B", "(B)", "Answer: B", "b)")
rouge()                 continuous ROUGE-L F (rouge-score)
chrf(), bleu()          continuous sentence chrF / BLEU, 0–100 (sacrebleu)
edit_similarity()       continuous 1 − normalized Levenshtein distance (rapidfuzz)
json_valid()            binary     the output is JSON (or holds a ```json block)
json_schema(schema)     binary     ... that validates against `schema` (jsonschema)
similarity(embed=DEP)   continuous cosine of embeddings of output and reference
judge(DEP, rubric=)     ordinal    a judge deployment grades 1–5 (or binary with scale="pass_fail")
pairwise(DEP)           continuous A vs B in both orders; win 1 / tie 0.5 / loss 0 vs the others
======================  =========  ===============================================================

Your own: decorate `f(output, reference, prompt) -> float | bool | Score` with `@scorer(...)`.
"""

from __future__ import annotations

from compare.scorers.base import (
    BatchScores,
    FunctionScorer,
    JudgeReply,
    Kind,
    RecordLike,
    RowView,
    Score,
    Scorer,
    ScoringCallError,
    ScoringContext,
    call_key,
    scorer,
)
from compare.scorers.engine import (
    SCORES_COLUMNS,
    ScoredFrames,
    check_scorers,
    score_frame,
    score_frame_sync,
)
from compare.scorers.judge import Judge
from compare.scorers.numeric import Numeric, last_number
from compare.scorers.overlap import Bleu, Chrf, EditSimilarity, Rouge
from compare.scorers.pairwise import PAIRS_COLUMNS, PairVerdict, PairwiseScorer
from compare.scorers.parsing import parse_grade, parse_pairwise, parse_pass_fail
from compare.scorers.similarity import Similarity
from compare.scorers.spec import as_scorers, default_scorers_for, eval_set, parse_scorer_spec
from compare.scorers.structured import JsonSchema, JsonValid, extract_json
from compare.scorers.text import (
    F1,
    Choice,
    Exact,
    Includes,
    Regex,
    extract_choice,
    normalize_answer,
)

exact = Exact
includes = Includes
f1 = F1
regex = Regex
numeric = Numeric
choice = Choice
rouge = Rouge
chrf = Chrf
bleu = Bleu
edit_similarity = EditSimilarity
json_valid = JsonValid
json_schema = JsonSchema
similarity = Similarity
judge = Judge
pairwise = PairwiseScorer

__all__ = [
    "F1",
    "PAIRS_COLUMNS",
    "SCORES_COLUMNS",
    "BatchScores",
    "Bleu",
    "Choice",
    "Chrf",
    "EditSimilarity",
    "Exact",
    "FunctionScorer",
    "Includes",
    "JsonSchema",
    "JsonValid",
    "Judge",
    "JudgeReply",
    "Kind",
    "Numeric",
    "PairVerdict",
    "PairwiseScorer",
    "RecordLike",
    "Regex",
    "Rouge",
    "RowView",
    "Score",
    "ScoredFrames",
    "Scorer",
    "ScoringCallError",
    "ScoringContext",
    "Similarity",
    "as_scorers",
    "bleu",
    "call_key",
    "check_scorers",
    "choice",
    "chrf",
    "default_scorers_for",
    "edit_similarity",
    "eval_set",
    "exact",
    "extract_choice",
    "extract_json",
    "f1",
    "includes",
    "json_schema",
    "json_valid",
    "judge",
    "last_number",
    "normalize_answer",
    "numeric",
    "pairwise",
    "parse_grade",
    "parse_pairwise",
    "parse_pass_fail",
    "parse_scorer_spec",
    "regex",
    "rouge",
    "score_frame",
    "score_frame_sync",
    "scorer",
    "similarity",
]
