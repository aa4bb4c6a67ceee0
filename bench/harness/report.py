"""A bench's command line, its JSON report with the machine's details, figures and tables;
and the waits every bench does: for a condition to hold, for stamps from other threads.

``ok(report)`` decides the exit code: a lost or doubled event, never a missed target.
"""

import argparse
import hashlib
import json
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0
Report = dict[str, Any]
T = TypeVar("T")


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says what was missing."""


def wall_clock() -> datetime:
    """Aware UTC now. The bench is not the daemon: it stamps results itself."""
    return datetime.now(UTC)  # noqa: TID251 - no injected Clock outside the daemon


def now() -> float:
    """A stamp comparable across processes (CLOCK_MONOTONIC)."""
    return time.monotonic()


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def quiet_logs(level: int = logging.WARNING) -> None:
    """Only warnings from a store or core run in this process (seeding logs its migrations)."""
    import structlog  # noqa: PLC0415 - only when a bench runs

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


def load_average() -> float:
    return os.getloadavg()[0]


def poll(
    probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT_S, every: float = 0.05
) -> T:
    """``probe()`` every ``every`` s until it gives something (not None); that."""
    deadline = now() + timeout
    while (found := probe()) is None:
        if now() > deadline:
            raise BenchError(f"{what} after {timeout} s")
        time.sleep(every)
    return found


class Stamps:
    """When each key arrived (other threads add them), and waits for them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.seen: dict[Hashable, list[float]] = {}
        self.closed = False  # nothing more will come: every wait ends

    def add(self, key: Hashable, stamp: float | None = None) -> None:
        with self._changed:
            self.seen.setdefault(key, []).append(now() if stamp is None else stamp)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def first(
        self, keys: Sequence[Hashable], timeout: float = TIMEOUT_S, count: int = 1, what: str = ""
    ) -> Any:
        """The ``count``-th stamp of each key once all are in; after ``timeout`` None, or
        a BenchError naming ``what`` when given."""
        here = lambda: all(len(self.seen.get(key, ())) >= count for key in keys)  # noqa: E731
        with self._changed:
            if self._changed.wait_for(lambda: here() or self.closed, timeout) and here():
                return [self.seen[key][count - 1] for key in keys]
        if what:
            raise BenchError(f"no {what} within {timeout} s")
        return None

    def need(self, key: Hashable, what: str, timeout: float = TIMEOUT_S, count: int = 1) -> float:
        """The ``count``-th stamp of ``key``; a BenchError naming ``what`` after ``timeout``."""
        return float(self.first([key], timeout, count, what)[0])

    def take(self, key: Hashable, what: str, timeout: float = TIMEOUT_S) -> float:
        """``need``, then forget the key (a PUBACK's message id comes back after 65,535)."""
        stamp = self.need(key, what, timeout)
        with self._changed:
            del self.seen[key]
        return stamp


def percentiles(seconds: Sequence[float], scale: float = 1e3) -> dict[str, float]:
    """n, p50, p90, p99, max and mean of durations, multiplied by ``scale`` (1e3: ms)."""
    if not seconds:
        raise BenchError("no samples")
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else []
    at = (lambda q: cuts[q - 1] * scale) if cuts else (lambda _q: seconds[0] * scale)
    return {
        "n": len(seconds),
        "p50": statistics.median(seconds) * scale,
        "p90": at(90),
        "p99": at(99),
        "max": max(seconds) * scale,
        "mean": statistics.fmean(seconds) * scale,
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def columns(spec: Mapping[str, Callable[[Any], object]], items: Iterable[Any]) -> str:
    """A table of ``items``: a column per header of ``spec``, its cell ``spec[header](item)``."""
    return table(list(spec), [[str(cell(item)) for cell in spec.values()] for item in items])


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


PCT = ("p50", "p90", "p99", "max")


def pct_table(
    labelled: Iterable[tuple[str, Mapping[str, float]]],
    digits: int = 1,
    first: str = "ms",
    counts: bool = True,
) -> str:
    """A row of ``percentiles`` per label: n (with ``counts``), p50, p90, p99, max."""
    rows = [
        [label, *([f"{figures['n']:,}"] if counts else []), *(fmt(figures[k], digits) for k in PCT)]
        for label, figures in labelled
    ]
    return table((first, *(["n"] if counts else []), *PCT), rows)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def output(*command: str) -> str:
    return subprocess.run(command, check=False, capture_output=True, text=True).stdout


def _git(*args: str) -> str:
    return output("git", "-C", str(ROOT), *args)


def source_state() -> dict[str, Any]:
    """The commit and any uncommitted change to the product code (service/, integrations/)."""
    diff = _git("diff", "HEAD", "--", "service", "integrations")
    changed = _git("status", "--porcelain", "--", "service", "integrations").splitlines()
    return {
        "commit": _git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "product_files_changed": len(changed),
        "product_fingerprint": hashlib.sha256(diff.encode()).hexdigest()[:12],
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def machine(where: Path, source_before: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the figures were measured on (``where``'s file system decides what fsync costs),
    and whether the product code changed since ``source_before``: then figures mix versions."""
    source = source_state()
    return {
        **source,
        "source_changed_during_run": None if source_before is None else source_before != source,
        "load_average": load_average(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_mib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "paho_mqtt": metadata.version("paho-mqtt"),
        "pydantic": metadata.version("pydantic"),
        "mosquitto": (output("mosquitto", "-h").splitlines() or [""])[0],
        "workdir_fs": output("stat", "-f", "-c", "%T", str(where)).strip() or "unknown",
    }


@contextmanager
def workspace(workdir: Path | None, prefix: str) -> Iterator[Path]:
    """``workdir`` (created), or a temporary directory removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        yield Path(temp)


def write_report(report: Report, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


# flag -> (type, default, help); a bool default makes a switch, the type "append" an option
# given again for each value.
Options = Mapping[str, tuple[Any, Any, str]]


def positive(text: str) -> int:
    """An option's type: a whole number of at least 1."""
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return int(text)


def parser(prog: str, doc: str | None, options: Options) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    made = argparse.ArgumentParser(f"python -m bench.{prog}", description=doc, formatter_class=raw)
    for flag, (kind, default, text) in options.items():
        if isinstance(default, bool):
            made.add_argument(flag, action="store_true", help=text)
        elif kind == "append":
            made.add_argument(flag, action="append", default=default, help=text)
        else:
            made.add_argument(flag, type=kind, default=default, help=text)
    return made


@dataclass(frozen=True)
class Bench:
    name: str
    doc: str | None
    run: Callable[[argparse.Namespace, Path], Report]
    render: Callable[[Report], str]
    ok: Callable[[Report], bool] = lambda _r: True
    options: Options = field(default_factory=dict)

    def parser(self) -> argparse.ArgumentParser:
        return parser(
            self.name,
            self.doc,
            {
                "--out": (Path, Path(f"bench/results/{self.name}.json"), "the JSON report"),
                "--workdir": (Path, None, "keep stores, logs here"),
                **self.options,
            },
        )

    def measure(self, args: argparse.Namespace, workdir: Path | None = None) -> Report:
        """Run once: the figures, with when, where and on what they were taken."""
        quiet_logs()
        started_at, before, load = wall_clock(), source_state(), load_average()
        with workspace(workdir, f"bench-{self.name}-") as work:
            figures = self.run(args, work)
            found = machine(work, before) | figures.pop("machine", {})
        return {
            "bench": self.name,
            "started_at": started_at.isoformat(),
            "finished_at": wall_clock().isoformat(),
            "load_average_before": load,
            "machine": found,
            **figures,
        }

    def report(self, argv: Sequence[str] = (), workdir: Path | None = None) -> Report:
        """The report for ``argv`` (the bench's own options), as run_all takes it."""
        return self.measure(self.parser().parse_args(list(argv)), workdir)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run, write the JSON, print the tables; exit 1 when a functional check failed."""
        args = self.parser().parse_args(argv)
        report = self.measure(args, args.workdir)
        write_report(report, args.out)
        print(self.render(report))
        print(f"\nwritten to {args.out}")
        return 0 if self.ok(report) else 1
