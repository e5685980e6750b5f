"""run() in a real Jupyter kernel: the progress bar is a widget displayed in the cell that ran it
and is brought to its final count (the bar lives on the kernel's main thread; see runner)."""

from __future__ import annotations

import nbclient
import nbformat

CONFIG = {"deployments": {"q": {"backend": "simulated", "simulated": {
    "seed": 1, "output_tokens": 4, "ttft_ms": 20, "itl_ms": 5}}}}
N = 6
CELLS = [
    "from compare.deployments_file import local_deployments\n"
    "from compare.runner import run\n"
    "from compare.server.local import local_endpoint\n"
    f"ep = local_endpoint(config={CONFIG!r}).__enter__()",
    f"res = run([f'p{{i}}' for i in range({N})], local_deployments(ep), progress=True)\n"
    "int((res.frame['status'] == 'ok').sum())",
    "ep.stop()",
]


def test_progress_bar_is_a_widget_in_the_running_cell() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[1].outputs
    assert outputs[-1]["data"]["text/plain"] == str(N)
    views = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in outputs
             if o["output_type"] == "display_data"
             and "application/vnd.jupyter.widget-view+json" in o["data"]]
    assert len(views) == 1, outputs
    # The widgets' final state (kept by nbclient): the bar's progress reached N of N.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert [(b["value"], b["max"]) for b in bars] == [(N, N)], bars
