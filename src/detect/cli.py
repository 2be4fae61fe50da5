"""The ``detect`` command: subcommands -> ``task(cfg)`` functions; nothing else.

Every subcommand takes its own arguments, then Hydra overrides (``key=value``).
``--cfg job`` prints the composed config; ``--help`` lists the main keys.
Configs are composed with Hydra's compose API (the thin wrapper around each
``task(cfg)``) so that one command line can carry a subcommand and overrides.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detect import __version__
from detect.config import ConfigError, compose, group_options, to_yaml
from detect.errors import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    DetectError,
    TaskError,
    exit_code_of,
)

log = logging.getLogger("detect")


@dataclass(frozen=True)
class Arg:
    """A positional argument (or option) that becomes a config override."""

    name: str
    key: str
    help: str
    must_exist: bool = False
    flag: str | None = None
    type: Callable[[str], Any] = str
    action: str | None = None


@dataclass(frozen=True)
class Command:
    target: str
    help: str
    issue: int
    args: tuple[Arg, ...] = ()
    sections: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


_FILE = Arg("file", "input.path", "input file", must_exist=True)

COMMANDS: dict[str, Command] = {
    "run": Command(
        "detect.app.live:run_task",
        "run the live detection pipeline (default: built-in simulated sensors)",
        8,
        sections=("run", "source", "align", "alarm", "model"),
    ),
    "replay": Command(
        "detect.app.live:replay_task",
        "replay a recording through the live pipeline at original pacing",
        8,
        args=(
            _FILE,
            Arg(
                "speed",
                "replay.speed",
                "pacing: 1 = original, N = N x faster",
                flag="--speed",
                type=float,
            ),
            Arg("fast", "replay.speed", "as fast as possible", flag="--fast", action="store_const"),
        ),
        sections=("replay", "run", "align", "alarm", "model"),
    ),
    "scan": Command(
        "detect.app.scan:scan_task",
        "run the pipeline on a recorded file as fast as possible",
        8,
        args=(
            _FILE,
            Arg("out", "output.dir", "output directory", flag="--out"),
            Arg(
                "trace_spacing_m",
                "input.trace_spacing_m",
                "trace step (m) where the file has none",
                flag="--trace-spacing-m",
                type=float,
            ),
        ),
        sections=("input", "output", "align", "alarm", "model", "dsp"),
    ),
    "record": Command(
        "detect.app.record:record_task",
        "record the configured sources to a session file (no detection)",
        9,
        sections=("run", "source"),
    ),
    "info": Command(
        "detect.app.info:info_task",
        "describe a recorded file (format, traces, samples, sample interval...)",
        9,
        args=(
            _FILE,
            Arg("json", "info.json", "print one JSON object", flag="--json", action="store_true"),
        ),
        sections=("input",),
    ),
    "convert": Command(
        "detect.app.convert:convert_task",
        "convert a recorded file to a session HDF5 (.h5) or SEG-Y (.sgy)",
        9,
        args=(_FILE, Arg("out", "output.path", "output file (.h5 or .sgy)")),
        sections=("input", "output"),
    ),
    "plot": Command(
        "detect.app.plot:plot_task",
        "draw the processed B-scan (radargram) of a recorded file, no model",
        17,
        args=(
            _FILE,
            Arg("out", "output.path", "output PNG (default: ./FILE_radargram.png)", flag="--out"),
            Arg(
                "trace_spacing_m",
                "input.trace_spacing_m",
                "trace step (m) where the file has none",
                flag="--trace-spacing-m",
                type=float,
            ),
        ),
        sections=("input", "output", "dsp"),
    ),
    "simulate": Command(
        "detect.app.simulate:simulate_task",
        "write simulated labelled lanes to disk",
        3,
        sections=("sim", "output"),
    ),
    "train": Command(
        "detect.app.train:train_task",
        "train a classifier on simulated lanes or labelled recordings",
        7,
        sections=("train", "model", "window"),
    ),
    "evaluate": Command(
        "detect.app.evaluate:evaluate_task",
        "score detectors on labelled lanes (Pd, FAR/m2, FROC, calibration)",
        5,
        sections=("evaluate",),
    ),
    "devices": Command(
        "detect.app.devices:devices_task",
        "list serial ports and the driver that matches each",
        6,
    ),
    "export": Command(
        "detect.app.export:export_task",
        "export a shipped model to ONNX, its card and input contract in the file's metadata",
        14,
        args=(Arg("out", "output.path", "output file (.onnx)"),),
        sections=("model", "output"),
    ),
    "export-gis": Command(
        "detect.app.export_gis:export_gis_task",
        "write the survey package for GIS (alarms, track, covered/not covered) of a session",
        17,
        args=(_FILE, Arg("out", "output.dir", "output directory", flag="--out")),
        sections=("input", "output"),
    ),
    "emulate": Command(
        "detect.app.emulate:emulate_task",
        "run a device emulator on a pseudo-terminal or local TCP port",
        6,
        sections=("emulate",),
    ),
}


def _build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    common.add_argument(
        "--cfg",
        choices=("job",),
        help="print the composed config (job) and exit",
    )
    parser = argparse.ArgumentParser(
        prog="detect",
        description="Sensor-fusion landmine detection: GPR + metal detector + GPS.",
        parents=[common],
        epilog=_exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"detect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=cmd.help,
            description=cmd.help,
            parents=[common],
            add_help=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "-h", "--help", action="store_true", help="show this help and the main config keys"
        )
        for a in cmd.args:
            if a.flag is None:
                p.add_argument(a.name, help=a.help, nargs="?")
            elif a.action == "store_true":
                p.add_argument(a.flag, dest=a.name, action="store_true", help=a.help)
            elif a.action == "store_const":
                p.add_argument(
                    a.flag, dest=a.name, action="store_const", const="__null__", help=a.help
                )
            else:
                p.add_argument(a.flag, dest=a.name, type=a.type, help=a.help)
        p.add_argument("overrides", nargs="*", metavar="key=value", help="Hydra config overrides")
    return parser


def _exit_codes_text() -> str:
    return "exit status:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items())


def _command_help(parser: argparse.ArgumentParser, name: str) -> str:
    cmd = COMMANDS[name]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        name
    ]
    lines = [sub.format_help().rstrip(), "", "config groups (choose with group=option):"]
    for group, opts in group_options().items():
        lines.append(f"  {group:<11} {', '.join(opts) if opts else '-'}")
    try:
        cfg = compose([])
    except ConfigError:
        cfg = None
    if cfg is not None and cmd.sections:
        lines += ["", "main keys (set with key=value):"]
        from omegaconf import OmegaConf

        for section in cmd.sections:
            node = cfg.get(section)
            if node is None:
                continue
            flat = OmegaConf.to_container(node, resolve=True)
            for key, value in _flatten(flat, section):
                lines.append(f"  {key} = {value!r}")
    lines += ["", "--cfg job prints the whole composed config.", "", _exit_codes_text()]
    return "\n".join(lines)


def _flatten(node: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        out: list[tuple[str, Any]] = []
        for k, v in node.items():
            out.extend(_flatten(v, f"{prefix}.{k}"))
        return out
    return [(prefix, node)]


def _overrides_from_args(cmd: Command, ns: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for a in cmd.args:
        value = getattr(ns, a.name, None)
        if value is None or value is False:
            continue
        if a.must_exist:
            p = Path(value)
            if not p.exists():
                raise TaskError(f"file not found: {value}", EXIT_USAGE)
            value = str(p.resolve())
        if value == "__null__":
            out.append(f"{a.key}=null")
        elif isinstance(value, bool):
            out.append(f"{a.key}=true")
        elif isinstance(value, str):
            out.append(f"{a.key}={_quote(value)}")
        else:
            out.append(f"{a.key}={value}")
    return out


def _quote(value: str) -> str:
    """Quote a path for Hydra's override grammar."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _load_task(cmd_name: str, cmd: Command) -> Callable[[Any], int | None]:
    module_name, func_name = cmd.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TaskError(
                f"'detect {cmd_name}' is not available yet (tracked in issue #{cmd.issue})",
                EXIT_UNAVAILABLE,
            ) from exc
        raise
    func = getattr(module, func_name, None)
    if func is None:
        raise TaskError(
            f"'detect {cmd_name}' is not available yet (tracked in issue #{cmd.issue})",
            EXIT_UNAVAILABLE,
        )
    return func  # type: ignore[no-any-return]


def setup_logging(verbose: bool, level: str = "INFO") -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    try:
        # key=value overrides may also follow an option (`replay FILE --fast a=b`), which
        # argparse does not give back to the `overrides` positional by itself
        ns, extra = parser.parse_known_args(argv)
        if extra and (ns.command is None or not all("=" in e for e in extra)):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:
            ns.overrides = [*getattr(ns, "overrides", []), *extra]
    except SystemExit as exc:
        return int(exc.code or 0)
    if ns.command is None:
        parser.print_help()
        return EXIT_USAGE
    cmd = COMMANDS[ns.command]
    if ns.help:
        print(_command_help(parser, ns.command))
        return EXIT_OK
    try:
        overrides = _overrides_from_args(cmd, ns) + list(ns.overrides)
        cfg = compose(overrides)
        if ns.cfg == "job":
            print(to_yaml(cfg), end="")
            return EXIT_OK
        setup_logging(ns.verbose, str(cfg.get("log_level", "INFO")))
        task = _load_task(ns.command, cmd)
        rc = task(cfg)
        return EXIT_OK if rc is None else int(rc)
    except ConfigError as exc:
        print(f"detect {ns.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TaskError as exc:
        print(f"detect {ns.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except DetectError as exc:  # a library error outside a command's own handling
        print(f"detect {ns.command}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return exit_code_of(exc)
    except KeyboardInterrupt:
        print(f"detect {ns.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    rc = main()
    train = sys.modules.get("detect.model.train")  # loaded only by commands that train
    if train is not None:
        train.exit_if_left_process_group(rc)
    sys.exit(rc)


if __name__ == "__main__":
    entry()
