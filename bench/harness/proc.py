"""Processes from outside: /proc figures, waiting for quiet, py-spy, a function in a child."""

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from bench.harness.report import TIMEOUT_S, BenchError, now, output

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(path: Path) -> list[str]:
    text = path.read_text(encoding="ascii")
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) "


def _status(path: Path, key: str) -> int:
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in {path}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / _TICKS


def write_bytes(pid: int | str = "self") -> int:
    """``/proc/PID/io`` write_bytes: counted as pages turn dirty, so a page rewritten and
    fsynced again counts again, one rewritten before writeback does not."""
    return _status(Path(f"/proc/{pid}/io"), "write_bytes")


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    """A ``VmRSS``-style line of /proc/<pid>/status, in MiB."""
    return _status(Path(f"/proc/{pid}/status"), key) / 1024


@dataclass(frozen=True, slots=True)
class ThreadSample:
    tid: int
    comm: str
    cpu_s: float
    voluntary: int
    nonvoluntary: int


def thread_samples(pid: int) -> dict[int, ThreadSample]:
    """CPU time and context switches of each thread of ``pid``."""
    samples = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = _stat(task / "stat")
            samples[int(task.name)] = ThreadSample(
                tid=int(task.name),
                comm=(task / "comm").read_text(encoding="utf-8").strip(),
                cpu_s=(int(fields[11]) + int(fields[12])) / _TICKS,
                voluntary=_status(task / "status", "voluntary_ctxt_switches"),
                nonvoluntary=_status(task / "status", "nonvoluntary_ctxt_switches"),
            )
        except FileNotFoundError:
            continue  # the thread ended between the listing and the read
    return samples


def wait_idle(pid: int, *, quiet_s: float = 0.5, timeout: float = TIMEOUT_S) -> float:
    """Wait until ``pid`` used no CPU for ``quiet_s``; the seconds waited."""
    started = now()
    last, quiet_since = cpu_seconds(pid), now()
    while now() - quiet_since < quiet_s:
        if now() - started > timeout:
            raise BenchError(f"pid {pid} still busy after {timeout} s")
        time.sleep(0.05)
        used = cpu_seconds(pid)
        if used != last:
            last, quiet_since = used, now()
    return now() - started


def py_spy() -> str | None:
    """The py-spy executable (``pip install py-spy`` into the venv), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def python_thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from ``py-spy dump``; {} without py-spy."""
    spy = py_spy()
    if spy is None:
        return {}
    dump = output(spy, "dump", "--pid", str(pid))
    found = re.finditer(r'^Thread (0x[0-9A-Fa-f]+|\d+) \((\w+)\): "(.*)"', dump, re.MULTILINE)
    return {int(m[1]): m[3] for m in found if not m[1].startswith("0x")}


class PySpyRecord:
    """``py-spy record`` attached to ``pid``: collapsed stacks per thread, non-blocking."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        spy = py_spy()
        if spy is None:
            raise BenchError("py-spy not found: .venv/bin/pip install py-spy")
        self.out = out
        command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        command += ["--threads", "--nonblocking", "--output", str(out)]
        quiet = subprocess.DEVNULL
        self._process = subprocess.Popen(command, stdout=quiet, stderr=quiet)

    def stop(self) -> Path:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        self._process.wait(30)
        return self.out


def profile_summary(raw: Path, *, within: str, top: int = 15) -> dict[str, Any]:
    """The hottest functions, self and inclusive, as shares of the stacks through ``within``."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    threads: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames, count = stack.split(";"), int(count_text)
        threads[frames[0]] = threads.get(frames[0], 0) + count
        start = next((i for i, frame in enumerate(frames) if within in frame), None)
        if start is None:
            continue
        samples += count
        functions = [re.sub(r":\d+\)$", ")", frame) for frame in frames[start:]]
        own[functions[-1]] = own.get(functions[-1], 0) + count
        for name in set(functions[1:]):
            total[name] = total.get(name, 0) + count

    def shares(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
        return [(name, count / samples) for name, count in ranked]

    return {
        "within": within,
        "samples": samples,
        "threads": threads,
        "self": shares(own),
        "inclusive": shares(total),
    }


def _child_main(target: Callable[..., Any], args: Any, results: Any, ready: Any) -> None:
    try:
        value = target(*args, ready=ready.set)
    except BaseException:  # the parent shows it: a child's traceback is lost otherwise
        results.put(("error", traceback.format_exc()))
        raise
    results.put(("ok", value))


class Child:
    """``target(*args, ready=callback)`` in a spawned process; it calls ``ready()`` once set up."""

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._results: Any = context.Queue()
        self._ready = context.Event()
        self._process = context.Process(
            target=_child_main, args=(target, args, self._results, self._ready), daemon=True
        )
        self._name = getattr(target, "__name__", repr(target))

    def start(self) -> Self:
        self._process.start()
        return self

    def wait_ready(self, timeout: float = TIMEOUT_S) -> None:
        if not self._ready.wait(timeout):
            self.kill()
            raise BenchError(f"{self._name} was not ready within {timeout} s")

    def result(self, timeout: float = TIMEOUT_S * 5) -> Any:
        try:
            status, value = self._results.get(timeout=timeout)
        except Exception as error:
            self.kill()
            raise BenchError(f"{self._name} gave no result within {timeout} s") from error
        self._process.join(10)
        if status != "ok":
            raise BenchError(f"{self._name} failed:\n{value}")
        return value

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(10)
