"""`compare app`: the explorer as a standalone web app, served by Voila on 127.0.0.1.

(Named after what serves it: `compare.server.app` is the local endpoint's aiohttp app.)

The app process starts the local endpoint (unless `--deployments` names real services, or
COMPARE_ENDPOINT_URL / COMPARE_ENDPOINT_KEY name a running one), writes a one-widget notebook into
a temporary directory and serves it with Voila. The endpoint's URL and key reach the notebook's
kernel through environment variables, never through argv or the notebook file; the Voila token
is passed in a traitlets Config object, not argv.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from compare.cli.args import name_list

__all__ = ["EnvEndpoint", "build_parser", "env_endpoint", "main", "write_app_notebook"]

ENV_URL = "COMPARE_ENDPOINT_URL"
ENV_KEY = "COMPARE_ENDPOINT_KEY"
ENV_NAMES = "COMPARE_ENDPOINT_DEPLOYMENTS"  # comma-separated names the endpoint serves
ENV_DEPLOYMENTS_FILE = "COMPARE_APP_DEPLOYMENTS"  # client-side deployments YAML, when given
ENV_OUT = "COMPARE_APP_OUT"
ENV_TOKEN = "COMPARE_APP_TOKEN"

INTRO = """# compare — explorer

Pick deployments, choose a prompt file or type prompts (one per line), set the parameters (and
scorers, e.g. `exact, f1`) and press **Run**. Counters update as each answer arrives; **Stop**
keeps what has finished. The tabs show the outputs side by side, charts (latency, TTFT vs decode
tokens/s, status, per-prompt latency, tokens and cost), **compare** (leaderboard and paired
differences per metric), **rate** (blind A/B votes, saved as you click), the records frame, export
to parquet or CSV, and a saved run. Reloading the page reopens the newest run, so rating
continues where it stopped."""

APP_CODE = """from compare.voila import explorer_from_env
explorer = explorer_from_env()
explorer"""


@dataclass(frozen=True)
class EnvEndpoint:
    """A running local endpoint named by environment variables (what `local_deployments` needs)."""

    url: str
    api_key: str = field(repr=False)
    deployment_names: list[str]


def env_endpoint() -> EnvEndpoint | None:
    """The endpoint named by COMPARE_ENDPOINT_URL / _KEY / _DEPLOYMENTS, or None if unset."""
    url = os.environ.get(ENV_URL)
    if not url:
        return None
    names = [n.strip() for n in os.environ.get(ENV_NAMES, "").split(",") if n.strip()]
    if not names:
        names = _served_names(url, os.environ.get(ENV_KEY, ""))
    return EnvEndpoint(url.rstrip("/"), os.environ.get(ENV_KEY, ""), names)


def _served_names(url: str, key: str) -> list[str]:
    """Ask the endpoint which deployments it serves (OpenAI v1 `GET /openai/v1/models`)."""
    import json
    import urllib.request

    request = urllib.request.Request(url.rstrip("/") + "/openai/v1/models",
                                     headers={"api-key": key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return [m["id"] for m in json.loads(response.read())["data"]]


def explorer_from_env() -> Any:
    """The Explorer the app notebook shows: deployments from the app's environment, and the
    newest run in the app's out directory when there is one."""
    from compare.explorer import Explorer

    out = os.environ.get(ENV_OUT) or None
    path = os.environ.get(ENV_DEPLOYMENTS_FILE)
    endpoint = None if path else env_endpoint()
    if path:
        explorer = Explorer(deployments=path, out_dir=out)
    elif endpoint is not None:
        explorer = Explorer(endpoint=endpoint, out_dir=out)
    else:
        from compare.errors import ConfigError

        raise ConfigError(f"set {ENV_URL} and {ENV_KEY} (compare app does this) or "
                          f"{ENV_DEPLOYMENTS_FILE}", field="endpoint")
    explorer.open_latest()  # a reloaded page shows the run it was on, votes counted
    return explorer


def write_app_notebook(directory: str | os.PathLike[str]) -> Path:
    """Write the app notebook (an intro and the explorer cell) into `directory`."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(INTRO), nbformat.v4.new_code_cell(APP_CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = Path(directory) / "compare-explorer.ipynb"
    nbformat.write(nb, path)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compare app",
        description="Serve the compare explorer as a web app (Voila) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8866, help="port (default 8866; 0: any free)")
    parser.add_argument("--token", default=None,
        help=f"access token (default: ${ENV_TOKEN}, else a random one, printed once)")
    parser.add_argument("--no-token", action="store_true",
                        help="serve without a token (anyone on this machine can use the app)")
    parser.add_argument("--deployments", metavar="FILE",
                        help="client deployments YAML (real services); default: a local endpoint")
    parser.add_argument("--local-config", metavar="FILE",
                        help="deployments YAML for the local endpoint (default: the shipped file)")
    parser.add_argument("--only", metavar="NAMES", type=name_list,
                        help="comma-separated local deployments to load (e.g. sim-fast,sim-slow)")
    parser.add_argument("--out", default="runs/app", help="run and export directory")
    parser.add_argument("--notebook", metavar="PATH",
                        help="serve this notebook instead of the built-in explorer notebook")
    return parser


@contextlib.contextmanager
def _endpoint_env(args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """Environment for the kernels: where the deployments are. Starts a local endpoint if needed."""
    env = {ENV_OUT: str(Path(args.out).resolve())}
    if args.deployments:
        env[ENV_DEPLOYMENTS_FILE] = str(Path(args.deployments).resolve())
        yield env
        return
    if os.environ.get(ENV_URL):
        yield env
        return
    from compare.server.local import local_endpoint

    print("compare app: starting the local endpoint…", flush=True)
    with local_endpoint(args.local_config, only=args.only) as ep:
        env.update({ENV_URL: ep.url, ENV_KEY: ep.api_key,
                    ENV_NAMES: ",".join(ep.deployment_names)})
        yield env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = "" if args.no_token else (args.token or os.environ.get(ENV_TOKEN)
                                      or secrets.token_urlsafe(24))
    port = args.port or _free_port()
    from traitlets.config import Config
    from voila.app import Voila

    with tempfile.TemporaryDirectory(prefix="compare-app-") as tmp, _endpoint_env(args) as env:
        notebook = Path(args.notebook).resolve() if args.notebook else write_app_notebook(tmp)
        os.environ.update(env)  # inherited by the kernels Voila starts
        config = Config()
        config.Voila.token = token
        config.Voila.ip = "127.0.0.1"
        config.Voila.port = port
        config.Voila.open_browser = False
        query = f"?token={token}" if token else ""
        print(f"compare app: serving {notebook.name} at http://127.0.0.1:{port}/{query}",
              flush=True)
        # SIGTERM (a service manager, a test) must unwind the `with` so the endpoint stops too.
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            Voila.launch_instance(argv=[str(notebook), "--no-browser"], config=config)
    return 0


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
