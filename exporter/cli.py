"""Command line: `serve`, `check`, `demo`, `config check`, with Prometheus-style flags."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from exporter import __version__
from exporter.config import Config, ConfigError, load_config
from exporter.logs import setup_logging
from exporter.web import parse_listen_address

log = logging.getLogger("exporter")
DEFAULT_LISTEN = ":9832"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _logging_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--log.level", "log_level", type=click.Choice(["debug", "info", "warn", "error"]),
                  default="info", show_default=True, help="Only log messages with at least this severity.")
    @click.option("--log.format", "log_format", type=click.Choice(["logfmt", "json"]), default="logfmt",
                  show_default=True, help="Log line format.")
    @functools.wraps(func)
    def wrapper(*args: Any, log_level: str, log_format: str, **kwargs: Any) -> Any:
        setup_logging("warning" if log_level == "warn" else log_level, log_format)
        return func(*args, **kwargs)

    return wrapper


_config_option = click.option(
    "--config.file", "config_file", type=click.Path(path_type=Path), default=Path("objstore-permission-exporter.yml"),
    show_default=True, help="Configuration file.")
_listen_option = click.option(
    "--web.listen-address", "listen_address", default=DEFAULT_LISTEN, show_default=True,
    help="Address to serve /metrics, /-/healthy and /-/ready on.")


def load_or_exit(path: Path) -> Config:
    """Validate the whole config before any request; on error print one line per problem and exit 2."""
    try:
        return load_config(path)
    except ConfigError as err:
        for line in err.lines:
            click.echo(f"config error: {path}: {line}", err=True)
        sys.exit(EXIT_CONFIG)


def _check_listen(address: str) -> None:
    try:
        parse_listen_address(address)
    except ValueError as exc:
        click.echo(f"config error: --web.listen-address: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


def print_matrix(config: Config, output: str) -> int:
    """Run one cycle for every target, print the matrix, return the exit code."""
    from exporter.app import all_targets, run_once
    from exporter.matrix import render_table, to_json

    found = all_targets(config)
    results = run_once(config, found)
    targets = {t.name: t for t in found}
    if output == "json":
        click.echo(to_json(results, targets))
    else:
        render_table(results, targets, Console())
    return EXIT_OK if results and all(r.healthy for r in results) else EXIT_FAILED


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="objstore-permission-exporter")
def main() -> None:
    """Probe every S3 operation each Thanos component needs, under that component's own identity."""


@main.command()
@_config_option
@_listen_option
@click.option("--config.check", "config_check", is_flag=True, help="Validate the configuration and exit.")
@_logging_options
def serve(config_file: Path, listen_address: str, config_check: bool) -> None:
    """Run the exporter: probe on a schedule, serve /metrics."""
    config = load_or_exit(config_file)
    _check_listen(listen_address)
    if config_check:
        click.echo(f"{config_file}: OK ({len(config.targets)} targets, {len(config.buckets)} buckets)")
        return
    from exporter.app import serve_forever, start_exporter

    serve_forever(start_exporter(config, listen_address))


@main.command()
@_config_option
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_logging_options
def check(config_file: Path, output: str) -> None:
    """One probe cycle for every target; exit 0 if every required operation works, 1 if not, 2 on bad config."""
    config = load_or_exit(config_file)
    sys.exit(print_matrix(config, output))


@main.group()
def config() -> None:
    """Configuration helpers."""


@config.command("check")
@_config_option
@_logging_options
def config_check(config_file: Path) -> None:
    """Validate the configuration file and exit (0 valid, 2 invalid)."""
    cfg = load_or_exit(config_file)
    click.echo(f"{config_file}: OK ({len(cfg.targets)} targets, {len(cfg.buckets)} buckets)")


@main.command()
@click.option("--once", is_flag=True, help="Print the matrix once and exit like `check`.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_listen_option
@click.option("--probe.interval", "interval", default="15s", show_default=True, help="Probe interval.")
@click.option("--emulator-info-file", type=click.Path(path_type=Path), default=None,
              help="Write the emulator's endpoint and admin keys here (JSON), for tests and experiments.")
@_logging_options
def demo(once: bool, output: str, listen_address: str, interval: str, emulator_info_file: Path | None) -> None:
    """Run on the embedded default: a local S3/STS/IAM emulator with a Thanos setup and the compactor incident."""
    _check_listen(listen_address)
    try:
        from exporter.demo.scenario import start_demo
    except ImportError as exc:  # moto is an optional extra
        click.echo(f"demo needs the emulator: pip install 'objstore-permission-exporter[demo]' ({exc})", err=True)
        sys.exit(EXIT_CONFIG)
    with start_demo(interval, emulator_info_file) as (config, config_path):
        if once:
            sys.exit(print_matrix(config, output))
        from exporter.app import serve_forever, start_exporter

        log.info("demo config written to %s", config_path)
        serve_forever(start_exporter(config, listen_address))


if __name__ == "__main__":
    main()
