"""The explorer's "rate" tab: blind A/B votes on two deployments' answers, one prompt at a time.

Pairs come from `compare.ratings.plan_pairs` (every two deployments that both answered a prompt
ok, in a seeded order with seeded sides), so the same run shows the same sequence after a reload
or a kernel restart; pairs already voted on in the run directory's ratings.jsonl are skipped, so
rating continues where it left off. Each vote is appended and fsync'ed by
`compare.ratings.append_rating` before the next pair shows; the deployment names are revealed
only once a pair has its vote.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import ipywidgets as w

from compare.explorer.html import message_html, prompt_texts
from compare.ratings import Pair, append_rating, plan_pairs, read_ratings

# (button label, vote written to ratings.jsonl): A is the left answer, B the right one.
VOTE_BUTTONS: Final = (("A better", "left"), ("tie", "tie"), ("B better", "right"),
                       ("both bad", "both_bad"))
VOTE_WORDS: Final = {vote: label for label, vote in VOTE_BUTTONS}
STYLE: Final = """<style>
.cmp-rate-answer {white-space: pre-wrap; word-break: break-word; font-family: monospace;
  font-size: 12px; border: 1px solid #ddd; padding: 6px 8px; min-height: 3em;}
.cmp-rate-prompt {white-space: pre-wrap; font-size: 13px;}
</style>"""

PairKey = tuple[str, int, frozenset[str]]


def pair_key(prompt_id: Any, repeat: Any, left: Any, right: Any) -> PairKey:
    """The same pair whichever side each deployment was shown on."""
    return (str(prompt_id), int(repeat), frozenset((str(left), str(right))))


def _answer_html(side: str, text: str) -> str:
    return (f"{STYLE}<b>{side}</b>"
            f'<div class="cmp-rate-answer">{html.escape(text) or "<i>(empty answer)</i>"}</div>')


class RateTab:
    """The rate tab's widgets (`ui`) and what its buttons do. `show(results)` loads a run;
    `vote("left" | "right" | "tie" | "both_bad")` is what the buttons call."""

    def __init__(self, *, seed: int = 0, on_vote: Callable[[], None] | None = None) -> None:
        self.seed = seed
        self.on_vote = on_vote
        self.directory: Path | None = None
        self.pairs: list[Pair] = []
        self.rated: set[PairKey] = set()
        self.current: Pair | None = None
        self._outputs: dict[tuple[str, str, int], str] = {}
        self._texts: dict[str, str] = {}
        self._references: dict[str, str] = {}
        self._lock = threading.Lock()  # two quick clicks must not both vote on one pair
        self.counter = w.HTML()
        self.prompt_view = w.HTML()
        self.left_view = w.HTML(layout=w.Layout(width="50%"))
        self.right_view = w.HTML(layout=w.Layout(width="50%"))
        self.buttons = {vote: w.Button(description=label, disabled=True)
                        for label, vote in VOTE_BUTTONS}
        for vote, button in self.buttons.items():
            button.on_click(lambda _button, vote=vote: self.vote(vote))
        self.note = w.Text(description="note", placeholder="optional: why (saved with the vote)",
                           layout=w.Layout(width="520px"))
        self.reveal = w.HTML()
        self.ui = w.VBox([
            self.counter, self.prompt_view,
            w.HBox([self.left_view, self.right_view], layout=w.Layout(width="100%")),
            w.HBox(list(self.buttons.values())), self.note, self.reveal,
        ])
        self._idle("Run (or open a saved run) to rate its answers here: two answers to one "
                   "prompt, names hidden until you vote.")

    # -- loading a run -----------------------------------------------------------------------

    def show(self, results: Any, prompts: Any = None) -> None:
        """Rate `results` (a Results): its pairs, minus those already voted on in its run
        directory. Without a run directory there is nowhere to keep votes: the tab says so."""
        with self._lock:
            self.directory = getattr(results, "path", None)
            frame = results.frame
            self.pairs = plan_pairs(frame, seed=self.seed) if len(frame) else []
            ok = frame[frame["status"] == "ok"]
            self._outputs = {(str(p), str(d), int(r)): str(o or "") for p, d, r, o in zip(
                ok["prompt_id"], ok["deployment"], ok["repeat"], ok["output"], strict=True)}
            self._texts = prompt_texts(results, prompts)
            self._references = self._reference_texts(results, prompts)
            self.reveal.value = ""
            if self.directory is None:
                self.pairs = []
                self._idle("Votes are kept in the run directory, and this run has none: give "
                           "the explorer out_dir= (or open a saved run) to rate.")
                return
            planned = {pair_key(p.prompt_id, p.repeat, p.left, p.right) for p in self.pairs}
            done = read_ratings(self.directory)
            self.rated = {pair_key(*row) for row in zip(
                done["prompt_id"], done["repeat"], done["left"], done["right"], strict=True)
            } & planned
            if not self.pairs:
                self._idle("Nothing to rate: a pair needs two deployments that both answered a "
                           "prompt ok (first repeat).")
                return
            self._next()

    @staticmethod
    def _reference_texts(results: Any, prompts: Any) -> dict[str, str]:
        if prompts is not None:
            return {p.id: p.reference for p in prompts if p.reference}
        table = results.prompt_table
        if table is None or "reference" not in table:
            return {}
        return {str(i): str(r) for i, r in zip(table["id"], table["reference"], strict=True)
                if isinstance(r, str) and r}

    # -- voting ------------------------------------------------------------------------------

    def vote(self, vote: str, note: str | None = None) -> dict[str, object] | None:
        """Append a vote on the pair shown (written and fsync'ed before returning), reveal its
        names and show the next pair. Returns the row written, None when nothing was shown."""
        with self._lock:
            pair = self.current
            if pair is None or self.directory is None:
                return None
            try:
                row = append_rating(self.directory, pair, vote,
                                    self.note.value if note is None else note)
            except OSError as exc:
                self.reveal.value = message_html(f"vote not saved: {exc}", error=True)
                return None
            self.rated.add(pair_key(pair.prompt_id, pair.repeat, pair.left, pair.right))
            self.note.value = ""
            self.reveal.value = (
                f"Your vote on <b>{html.escape(pair.prompt_id)}</b>: {VOTE_WORDS[vote]}. "
                f"A was <b>{html.escape(pair.left)}</b>, B was <b>{html.escape(pair.right)}</b>.")
            self._next()
        if self.on_vote is not None:
            self.on_vote()
        return row

    @property
    def remaining(self) -> list[Pair]:
        """Planned pairs without a vote yet, in the order they are shown."""
        return [p for p in self.pairs
                if pair_key(p.prompt_id, p.repeat, p.left, p.right) not in self.rated]

    # -- painting ----------------------------------------------------------------------------

    def _next(self) -> None:
        remaining = self.remaining
        self.current = remaining[0] if remaining else None
        path = html.escape(str(self.directory / "ratings.jsonl")) if self.directory else ""
        self.counter.value = (f"votes given: <b>{len(self.rated)} / {len(self.pairs)}</b> pairs "
                              f'<span style="color:#555">(saved in <code>{path}</code>)</span>')
        if self.current is None:
            self._clear_pair()
            self.prompt_view.value = (f"<i>All {len(self.pairs)} pairs rated. The compare tab "
                                      "ranks the deployments by these votes.</i>")
            return
        pair = self.current
        text = self._texts.get(pair.prompt_id, "")
        reference = self._references.get(pair.prompt_id)
        extra = (f'<div style="color:#555">reference answer: {html.escape(reference)}</div>'
                 if reference else "")
        self.prompt_view.value = (f"{STYLE}<b>{html.escape(pair.prompt_id)}</b>"
                                  f'<div class="cmp-rate-prompt">{html.escape(text)}</div>{extra}')
        self.left_view.value = _answer_html(
            "A", self._outputs.get((pair.prompt_id, pair.left, pair.repeat), ""))
        self.right_view.value = _answer_html(
            "B", self._outputs.get((pair.prompt_id, pair.right, pair.repeat), ""))
        for button in self.buttons.values():
            button.disabled = False

    def _clear_pair(self) -> None:
        self.left_view.value = self.right_view.value = ""
        for button in self.buttons.values():
            button.disabled = True

    def _idle(self, text: str) -> None:
        self.current = None
        self.counter.value = ""
        self.prompt_view.value = f"<i>{html.escape(text)}</i>"
        self._clear_pair()
