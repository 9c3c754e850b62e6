"""The command line: the only code that reads argv and the environment.

model-manager serve     run the proxy
model-manager check     validate a config file
model-manager stats     print what the router has learned
model-manager evaluate  replay an outcome table through a policy offline
model-manager warm-start  teach the router logged outcomes before serving
model-manager demo      watch the router learn on simulated models
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from collections.abc import Sequence

from starlette.applications import Starlette

from policies.base import ALL_PROMPTS
from proxy.cli.loading import load as load_config
from proxy.cli.log_format import FORMATS, LOG_FORMAT_ENV, configure_logging
from proxy.config.reader import ConfigError

CONFIG_ENV = "MODEL_MANAGER_CONFIG"
WORKERS_ENV = "MODEL_MANAGER_WORKERS"
DEFAULT_CONFIG = "config.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns the process exit code."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_format)
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `stats --json | head`: the reader has all it wanted
        _silence_stdout()
        return 0
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def app_from_env() -> Starlette:
    """App factory for uvicorn (also with --workers): config path from MODEL_MANAGER_CONFIG.

    The app reloads that file on SIGHUP or ``POST /admin/reload``; under ``--workers N`` the
    endpoint asks uvicorn's supervisor (SIGHUP to it) to restart every worker, one at a time."""
    from proxy.app import create_app

    configure_logging()
    path = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)
    workers = int(os.environ.get(WORKERS_ENV, "1"))
    return create_app(
        load_config(path),
        reload_from=functools.partial(load_config, path),
        restart_workers=_restart_workers if workers > 1 else None,
    )


def _restart_workers() -> None:
    """SIGHUP to uvicorn's supervisor: it starts a fresh worker, then stops an old one, in turn."""
    os.kill(os.getppid(), signal.SIGHUP)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from proxy.http.bad_http import answer as bad_http

    load_config(args.config)  # fail fast, with a message, before uvicorn starts
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    os.environ[LOG_FORMAT_ENV] = args.log_format
    os.environ[WORKERS_ENV] = str(args.workers)
    uvicorn.run(
        "proxy.cli.main:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=bad_http.protocol(),  # parser-level 400s are OpenAI-shaped JSON
        access_log=args.access_log,
        log_level=args.log_level,
        log_config=None if args.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=10,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from proxy.pipeline.router import Router

    Router(config)
    print(f"{args.config}: ok ({len(config.arms)} models, {len(config.agents)} agents)")
    for name, reason in config.unavailable.items():
        print(f"unavailable: {name}: {reason}")
    for notice in config.notices:
        print(f"litellm key: {notice}")
    return 1 if args.strict and config.unavailable else 0


def _stats(args: argparse.Namespace) -> int:
    from proxy.cli.stats import print_stats

    config = load_config(args.config)
    return print_stats(config, agent=args.agent, as_json=args.json, context=args.context or ALL_PROMPTS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-manager", description=__doc__.splitlines()[0])
    parser.set_defaults(log_format=None)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the proxy")
    _config_arg(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4000)
    serve.add_argument(
        "--workers", type=int, default=1, help="processes (share state via Redis or the embedded database)"
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--log-format", choices=FORMATS, default="text", help="text lines, or one JSON object per line"
    )
    serve.set_defaults(run=_serve)
    check = sub.add_parser("check", help="validate a config file")
    _config_arg(check)
    check.add_argument(
        "--strict", action="store_true", help="exit 1 when a model is unavailable (credentials unset)"
    )
    check.set_defaults(run=_check)
    stats = sub.add_parser("stats", help="print learned posteriors per agent and model")
    _config_arg(stats)
    stats.add_argument("--agent", help="only this agent")
    stats.add_argument("--context", help="posteriors for prompts of this context (e.g. chat, code+tools)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(run=_stats)
    _add_evaluate(sub)
    _add_warm_start(sub)
    _add_demo(sub)
    return parser


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default config.yaml)")


def _add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from proxy.cli.evaluate import add_evaluate_command

    add_evaluate_command(sub)


def _add_warm_start(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from proxy.cli.warm_start import add_warm_start_command

    add_warm_start_command(sub)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="watch the router learn on simulated models (no keys needed)")
    demo.add_argument("--seconds", type=_positive, default=60.0, help="traffic duration (default 60)")
    demo.add_argument("--requests", type=int, help="stop after this many chat calls")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=4000, help="0: any free port")
    demo.add_argument("--concurrency", type=int, default=12, help="concurrent clients (default 12)")
    demo.add_argument("--window", type=int, default=30, help="shares over each agent's last N calls")
    demo.add_argument("--keep-serving", action="store_true", help="keep the proxy up until Ctrl-C")
    demo.add_argument("--json", action="store_true", help="a JSON summary on stdout, the rest on stderr")
    demo.set_defaults(run=_demo)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _demo(args: argparse.Namespace) -> int:
    from proxy.cli.demo.command import Options, run_demo

    os.environ.pop("REDIS_URL", None)  # the demo always runs on the embedded store
    options = Options(
        seconds=args.seconds,
        requests=args.requests,
        host=args.host,
        port=args.port,
        concurrency=args.concurrency,
        window=args.window,
        keep_serving=args.keep_serving,
        json=args.json,
    )
    return run_demo(options)
