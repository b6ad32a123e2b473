"""Shared helpers for the benchmarks: timing and a description of the machine they ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}, {platform.system()}"


def module_at(commit: str, path: str, name: str) -> types.ModuleType:
    """The module in file `path` as it was at `commit` (read from git), named `name`: an earlier version of
    the code measured beside the current one."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_of(n: int, fn: Callable[[], T]) -> tuple[T, float]:
    results = [timed(fn) for _ in range(n)]
    return min(results, key=lambda r: r[1])


def profiler(pid: int, out: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy (installed with the dev extras) sampling process `pid` while it holds the GIL, `seconds` long,
    written as raw folded stacks to `out`."""
    spy = Path(sys.executable).with_name("py-spy")
    duration = str(int(seconds) + 1)
    command = [str(spy), "record", "-p", str(pid), "-o", out, "-f", "raw", "-d", duration, "-r", "200", "--gil"]
    return subprocess.Popen(command)
