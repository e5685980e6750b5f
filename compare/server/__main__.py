"""`python -m compare.server` / `compare serve`: run the local endpoint until Ctrl-C or SIGTERM.

Prints one machine-readable line once it accepts requests:
    compare-server listening on http://127.0.0.1:PORT
The key comes from --api-key, else COMPARE_SERVER_KEY, else one is generated and printed once.
Request logs (one line each, never a key) go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from compare.errors import ConfigError
from compare.server.backends import build_backends, servable, unavailable
from compare.server.config import DEFAULT_DEPLOYMENTS_FILE, ServerConfig, load_config
from compare.server.http import build_app

READY_PREFIX = "compare-server listening on "
KEY_ENV = "COMPARE_SERVER_KEY"
PARENT_ENV = "COMPARE_SERVER_PARENT_PID"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compare serve",
        description="Serve local deployments (real small models and simulated ones) over the "
                    "Azure AI model inference and Azure OpenAI APIs.",
    )
    parser.add_argument("--deployments", metavar="FILE", default=None,
                        help=f"deployments YAML (default: {DEFAULT_DEPLOYMENTS_FILE.name} shipped "
                             "with compare)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port (default 8000); 0 picks a free one")
    parser.add_argument("--api-key", default=None,
                        help=f"key clients must send (default: ${KEY_ENV}, else generated); "
                             "prefer the variable: arguments show in `ps`")
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="comma-separated deployment names to load (others are skipped)")
    return parser


async def serve(config: ServerConfig, *, host: str, port: int, api_key: str,
                ready: asyncio.Event | None = None) -> None:
    backends, pools = build_backends(config)
    # handler_cancellation: a client that hangs up cancels its handler (stops a generation).
    # auto_decompress off: request bodies are decoded by compare.server.request_body, so a
    # bad or unsupported Content-Encoding is an Azure-format 4xx, not a parser traceback.
    runner = web.AppRunner(build_app(config, backends, api_key), access_log=None,
                           handler_cancellation=True, shutdown_timeout=1.0,
                           auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    shown_host = f"[{host}]" if ":" in host else host
    logging.getLogger("compare.server").info(
        "serving %s from %s", ", ".join(config.names()), config.source)
    print(f"{READY_PREFIX}http://{shown_host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    watchdog = asyncio.create_task(_watch_parent(stop))
    try:
        await stop.wait()
    finally:
        watchdog.cancel()
        await runner.cleanup()
        pools.close()


async def _watch_parent(stop: asyncio.Event) -> None:
    """Exit when the process that started us (local_endpoint) is gone, even after a SIGKILL.

    local_endpoint puts the server in its own session (so Ctrl-C in a terminal reaches the
    script, which then stops the server in order); without this an orphaned server would keep
    its port and models forever.
    """
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != int(parent):
            logging.getLogger("compare.server").info("parent process gone: stopping")
            stop.set()
            return


def _servable(config: ServerConfig, explicit: bool) -> ServerConfig:
    """Leave out deployments whose optional dependencies are missing, saying so on stderr; a
    deployment asked for by name with --only must load, or it is an error."""
    missing = unavailable(config)
    for name, reason in missing.items():
        if explicit:
            raise ConfigError(f"deployment {name!r} cannot load: {reason}", source=config.source)
        print(f"compare serve: skipping deployment {name!r}: {reason}", file=sys.stderr)
    kept = servable(config)
    if not kept.deployments:
        raise ConfigError("no deployment can load here", source=config.source)
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    try:
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
        config = load_config(args.deployments, only=only)
        config = _servable(config, explicit=bool(only))
    except ConfigError as exc:
        print(f"compare serve: {exc}", file=sys.stderr)
        return 2
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        key = secrets.token_urlsafe(24)
        # Shown once, on the terminal only: never logged.
        print(f"compare-server api key (generated; set {KEY_ENV} to choose one): {key}",
              flush=True)
    try:
        asyncio.run(serve(config, host=args.host, port=args.port, api_key=key))
    except ConfigError as exc:
        print(f"compare serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"compare serve: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
