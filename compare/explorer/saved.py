"""The explorer's files: export what the tabs show (parquet + manifest, or CSV), and open a saved
run directory into the tabs without sending anything (the "open run" tab, `Explorer.open`, and
`open_latest`, with which `compare app` shows a reloaded page the run it was rating).

`SavedRuns` adds this to the widgets of `compare.explorer.layout.ExplorerView`;
`compare.explorer.widget.Explorer` adds runs on top.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from compare.errors import CompareError, ConfigError
from compare.explorer.html import counters_html, message_html
from compare.explorer.kernel import BackgroundTask
from compare.explorer.layout import ExplorerView
from compare.results import Results
from compare.run_dir import RECORDS_FILE, RESULTS_FILE


def latest_run(directory: str | os.PathLike[str]) -> Path | None:
    """The run directory under `directory` whose records were written last, or None."""
    stamps = {}
    base = Path(directory)
    for run in base.iterdir() if base.is_dir() else ():
        files = [run / RECORDS_FILE, run / RESULTS_FILE]
        times = [f.stat().st_mtime_ns for f in files if f.is_file()]
        if times:
            stamps[run] = max(times)
    return max(stamps, key=stamps.__getitem__) if stamps else None


class SavedRuns(ExplorerView):
    """Export and open: the parts of the Explorer that read and write run directories."""

    results: Results | None
    prompts: Any
    background: BackgroundTask
    out_dir: Path | None

    # -- export ------------------------------------------------------------------------------

    def _export_target(self) -> Path:
        if self.results is None or not len(self.results):
            raise ConfigError("nothing to export yet: run first (or open a saved run)",
                              field="results")
        return Path(self.export_dir.value.strip() or ".").expanduser()

    def export_parquet(self, _button: Any = None) -> Path | None:
        """Save results.parquet + manifest.json into the export directory (Results.save)."""
        try:
            directory = self.results.save(self._export_target())  # type: ignore[union-attr]
        except (CompareError, OSError) as exc:
            self._export_said(str(exc))
            return None
        path = directory / "results.parquet"
        self._export_said("wrote", path)
        return path

    def export_csv(self, _button: Any = None) -> Path | None:
        """Save the records frame as results.csv into the export directory."""
        try:
            target = self._export_target()
            target.mkdir(parents=True, exist_ok=True)
            path = target / "results.csv"
            self.results.frame.to_csv(path, index=False)  # type: ignore[union-attr]
        except (CompareError, OSError) as exc:
            self._export_said(str(exc))
            return None
        self._export_said("wrote", path)
        return path

    # -- open --------------------------------------------------------------------------------

    def open_run(self, run_dir: str | os.PathLike[str] | None = None) -> Results | None:
        """Show a saved run directory in the tabs (the Open button; default: the path typed in
        the "open run" tab). Nothing is sent. Returns its Results, or None when it cannot be
        read (the tab then says why). `await explorer.wait()` waits for its charts."""
        if self.background.running:
            self.open_status.value = message_html(
                "a run is in progress: stop it or wait for it before opening a saved one",
                error=True)
            return None
        path = Path(run_dir if run_dir is not None else self.open_dir.value.strip()).expanduser()
        try:
            results = Results.load(path)
        except (CompareError, OSError) as exc:
            self.open_status.value = message_html(f"cannot open: {exc}", error=True)
            return None
        self.open_dir.value = str(path)
        self._show_saved(results, path)
        return results

    def open_latest(self) -> Results | None:
        """Open the newest run under `out_dir` (ratings continue where they stopped); None when
        there is none. Run stays available."""
        latest = latest_run(self.out_dir) if self.out_dir is not None else None
        return self.open_run(latest) if latest is not None else None

    def _show_saved(self, results: Results, path: Path) -> None:
        self.results = results
        self.prompts = None  # the texts saved with the run are shown
        frame = results.frame
        per_deployment = frame.groupby("deployment").size()
        total = int(per_deployment.max()) if len(per_deployment) else 0
        self.counters.value = counters_html(list(frame.itertuples(index=False)),
                                            results.deployments, total)
        said = (f"opened {path}: {len(results)} records, {len(results.deployments)} deployments "
                "(a saved run: nothing was sent)")
        self.open_status.value = message_html(said)
        self._say(said)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._render_now(results, None)
            return
        self.background.start(lambda: self._render(results, None))

