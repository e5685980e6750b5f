"""`Explorer`: what the explorer's buttons do — start a run as a background task on the kernel's
loop, count records as they arrive, fill the tabs, stop, export.

Requests go through `compare.runner.arun`, tables and statistics come from
`compare.results.Results`, figures from `compare.charts`; the widgets are in
`compare.explorer.layout`, the HTML in `compare.explorer.html`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from compare.deployments import Deployment
from compare.errors import CompareError, ConfigError
from compare.explorer.html import counters_html
from compare.explorer.kernel import BackgroundTask
from compare.explorer.saved import SavedRuns
from compare.prompts import PromptSet
from compare.records import Record
from compare.results import Results

if TYPE_CHECKING:  # compare.scorers loads every built-in scorer: only when a run needs them
    from compare.scorers.base import Scorer

LIVE_EVERY_S: Final = 0.2  # at most five counter repaints a second, however fast records arrive


def _deployments(deployments: Any, endpoint: Any) -> list[Deployment]:
    from compare.deployments_file import as_deployments

    if deployments is None and endpoint is None:
        raise ConfigError("Explorer needs deployments= (a file or a list of Deployment) or "
                          "endpoint= (a running compare.local_endpoint(...))",
                          field="deployments")
    return as_deployments(deployments if deployments is not None else endpoint)


class Explorer(SavedRuns):
    """Pick deployments and prompts, press Run, watch counters, read outputs side by side.

    `deployments`: a deployments YAML path or a list of `Deployment`; or leave it out and pass
    `endpoint` (a `compare.local_endpoint(...)`) to use every deployment it serves.
    `prompts`: a prompt file path (.jsonl/.csv), a list of strings, a PromptSet, or None for the
    bundled demo set. `out_dir`: where runs checkpoint (`<out_dir>/<run_id>/records.jsonl`) and
    where Export writes by default. `run`: a saved run directory to show at once; with no
    deployments the explorer only browses it (`Explorer.open(run_dir)`), Run stays off.
    `scorers`: score each run's answers (specs such as "exact" or "judge:DEPLOYMENT", or Scorer
    objects); the specs fill the scorers field, which the user can edit, and a judge may be any
    deployment the explorer knows, selected or not. The compare tab ranks by the scores, the
    rate tab collects blind A/B votes into the run directory.
    """

    def __init__(
        self,
        deployments: str | os.PathLike[str] | Iterable[Deployment] | None = None,
        endpoint: Any = None,
        prompts: Any = None,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 64,
        repeats: int = 1,
        concurrency: int = 8,
        selected: Sequence[str] | None = None,
        run: str | os.PathLike[str] | None = None,
        scorers: Sequence[Scorer | str] | None = None,
    ) -> None:
        browse = run is not None and deployments is None and endpoint is None
        self.deployments = [] if browse else _deployments(deployments, endpoint)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.records: list[Record] = []
        self.results: Results | None = None
        self.prompts: PromptSet | None = None
        self.error: BaseException | None = None
        self.stopped = False
        self.run_count = 0
        self.background = BackgroundTask()
        self._names: list[str] = []
        self._total = 0
        self._last_paint = 0.0
        self.fixed_scorers = [s for s in scorers or () if not isinstance(s, str)]
        params = {"temperature": temperature, "max_tokens": max_tokens, "repeats": repeats,
                  "concurrency": concurrency,
                  "scorers": [s for s in scorers or () if isinstance(s, str)]}
        export_dir = str(self.out_dir or Path("runs") / "explorer")
        self._build([d.name for d in self.deployments], prompts, params, selected, export_dir)
        self.run_button.on_click(self._guard(self.run_clicked))
        self.stop_button.on_click(self._guard(self.stop_clicked))
        self.parquet_button.on_click(self._guard(self.export_parquet))
        self.csv_button.on_click(self._guard(self.export_csv))
        self.open_button.on_click(self._guard(lambda _button: self.open_run()))
        if run is not None:
            self._open_at_start(Path(run), browse)

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], **kwargs: Any) -> Explorer:
        """An explorer that browses a saved run directory: side by side, charts, frame, export.
        Nothing is sent (pass deployments= to `Explorer(..., run=run_dir)` to run as well)."""
        return cls(run=run_dir, **kwargs)

    def _open_at_start(self, run_dir: Path, browse: bool) -> None:
        results = Results.load(run_dir)  # a ConfigError names the directory and what is missing
        self.open_dir.value = str(run_dir)
        self._show_saved(results, run_dir)
        if browse:
            names = results.deployments
            self.deployment_select.options = names
            self.deployment_select.value = tuple(names)
            self.deployment_select.disabled = True
            self.run_button.disabled = True

    def _guard(self, handler: Callable[[Any], Any]) -> Callable[[Any], None]:
        """A button handler whose unexpected errors show in the status line: the front end
        would otherwise only log them where a user never looks."""

        def run(button: Any) -> None:
            try:
                handler(button)
            except Exception as exc:
                self.error = exc
                self._say(f"{type(exc).__name__}: {exc}", error=True)

        return run

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # The widget view for the front end; a short stable text for plain-text consumers (nbval).
        bundle = dict(self.ui._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        if not self.deployments and self.results is not None:
            return (f"Explorer(saved run {self.open_dir.value}: "
                    f"{', '.join(self.results.deployments)})")
        names = ", ".join(d.name for d in self.deployments)
        return f"Explorer({len(self.deployments)} deployments: {names})"

    # -- programmatic control (what the buttons call) ----------------------------------------

    def select(self, names: Sequence[str]) -> None:
        """Select deployments by name, as a user would in the list."""
        unknown = [n for n in names if n not in self.deployment_select.options]
        if unknown:
            raise ConfigError(f"no deployment {unknown[0]!r}; choose from "
                              f"{', '.join(self.deployment_select.options)}", field="names")
        self.deployment_select.value = tuple(names)

    @property
    def running(self) -> bool:
        """A run is starting or in progress."""
        return self.background.running

    def run_clicked(self, _button: Any = None) -> asyncio.Task[Results | None] | None:
        """Start a run in the background (the Run button). Returns the task (None when the
        inputs are wrong, the status line then says why, or when the click arrived on another
        thread and the task is being created on the kernel's loop)."""
        if self.running:
            return self.background.task
        self.error = None
        try:
            if not self.deployments:
                raise ConfigError("this explorer only browses a saved run; to send requests, "
                                  "make one with deployments= (or endpoint=)", field="deployments")
            chosen = set(self.deployment_select.value)
            if not chosen:
                raise ConfigError("select at least one deployment", field="deployments")
            deployments = [d for d in self.deployments if d.name in chosen]
            self.prompts = self.prompt_set()
            scorers = self.scorer_list()
        except CompareError as exc:
            self.error = exc
            self._say(f"cannot run: {exc}", error=True)
            return None
        self._start(deployments, self.prompts)
        prompts = self.prompts
        return self.background.start(lambda: self._run(deployments, prompts, scorers))

    def stop_clicked(self, _button: Any = None) -> None:
        """Cancel the running task (the Stop button); finished records are kept."""
        if self.running:
            self.stopped = True
            self._say("stopping…")
            self.background.cancel()

    async def wait(self) -> Results | None:
        """Wait for the current run to finish; its Results (None if it never started)."""
        await self.background.settle()
        if self.error is not None:
            raise self.error
        return self.results

    # -- the run -----------------------------------------------------------------------------

    def _start(self, deployments: list[Deployment], prompts: PromptSet) -> None:
        """Reset counters and disable Run at once, before the task gets its first turn."""
        self.records = []
        self.stopped = False
        self.run_count += 1
        self._names = [d.name for d in deployments]
        self._total = len(prompts) * int(self.repeats.value)
        self.progress.max = max(1, self._total * len(deployments))
        self.progress.value = 0
        self._busy(True)
        self._say(f"run #{self.run_count}: {len(prompts)} prompts × {len(deployments)} "
                  f"deployments × {self.repeats.value} repeats…")
        self._paint_counters(force=True)

    async def _run(self, deployments: list[Deployment], prompts: PromptSet,
                   scorers: list[Any]) -> Results | None:
        from compare.runner import arun  # imported late: the widget module loads fast

        started = time.perf_counter()
        results: Results | None = None
        run_dir = self._run_dir()
        try:
            results = await arun(
                prompts, deployments, repeats=int(self.repeats.value), out=run_dir,
                concurrency=int(self.concurrency.value), progress=False,
                on_record=self._on_record, scorers=scorers or None,
                score_with=self.deployments if scorers else None, **self._overrides())
        except asyncio.CancelledError:
            self.stopped = True
        except Exception as exc:  # shown in the status line; wait() re-raises it
            self.error = exc
        try:
            if results is None or len(results) < len(self.records):
                # Stopped or failed: everything that finished is still shown, exportable and
                # rated into the run directory that holds its checkpoint.
                keep = run_dir if run_dir is not None and run_dir.is_dir() else None
                results = Results.from_records(self.records, path=keep)
            self.results = results
            self._paint_counters(force=True)
            elapsed = time.perf_counter() - started
            await self._render(results, self.prompts)
        finally:
            self._busy(False)  # Run comes back only once the tabs show this run
        # Said last, once every tab shows this run: "run #N done" means everything is in place.
        if self.error is not None:
            self._say(f"run #{self.run_count} failed after {elapsed:.1f} s: "
                      f"{type(self.error).__name__}: {self.error}", error=True)
        else:
            word = "stopped" if self.stopped else "done"
            self._say(f"run #{self.run_count} {word}: {len(results)} records in {elapsed:.1f} s")
        return results

    def _run_dir(self) -> Path | None:
        # The run number keeps two runs in one second apart (a shared dir would replay as cached).
        stamp = time.strftime("explorer-%Y%m%d-%H%M%S")
        return self.out_dir / f"{stamp}-{self.run_count}" if self.out_dir else None

    def _on_record(self, record: Record) -> None:
        self.records.append(record)
        self.progress.value = len(self.records)
        self._paint_counters()

    def _paint_counters(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_paint < LIVE_EVERY_S:
            return
        self._last_paint = now
        self.counters.value = counters_html(self.records, self._names, self._total)
