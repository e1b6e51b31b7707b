"""Build and run a generated C project: host gcc, Cortex-M4 (arm-none-eabi-gcc), QEMU mps2-an386.

``build_host`` / ``run_host``: the project's ``make host`` and its harness (int8 samples in a file, int8
outputs back). ``build_arm`` + ``section_sizes``: ``make arm`` and ``arm-none-eabi-size -A`` of the
library's objects (``model.o``, ``weights.o``, ``kernels.o``; the harness and newlib excluded).
``run_qemu``: the ELF on ``qemu-system-arm -M mps2-an386 -icount shift=0`` with semihosting;
instructions per inference come from the board's 25 MHz CMSDK timer read around each ``model_run``
and converted with a calibration loop of known length run in the same session (icount: virtual time
advances one nanosecond per instruction) — QEMU counts instructions, not cycles.

A missing tool raises ``ToolchainMissing`` naming ``make arm-toolchain``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HOST_TOOLS = ("make", "cc")
ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size")
QEMU_TOOLS = ("qemu-system-arm",)
SECTIONS = ("text", "rodata", "data", "bss")
LIBRARY_OBJECTS = ("model", "weights", "kernels")


class ToolchainMissing(RuntimeError):
    """A compiler or emulator the build needs is not installed."""


class BuildError(RuntimeError):
    """The generated project failed to compile or run (one line; the tool's output is attached)."""


def missing(tools: tuple[str, ...]) -> list[str]:
    """The tools of ``tools`` not found on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def require_tools(tools: tuple[str, ...]) -> None:
    """Raise ``ToolchainMissing`` naming the absent tools and ``make arm-toolchain``."""
    absent = missing(tools)
    if absent:
        raise ToolchainMissing(f"{', '.join(absent)} not found: run `make arm-toolchain` (Debian packages "
                               "gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm)")


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{' '.join(cmd[:2])}: timed out after {timeout:.0f} s in {cwd}") from None
    if res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise BuildError(f"{' '.join(cmd[:3])} failed in {cwd} (exit {res.returncode}): "
                         f"{tail[-1] if tail else ''}")
    return res


def _make(project: Path, target: str, timeout: float = 300) -> None:
    _run(["make", "-s", target], Path(project), timeout)


def build_host(project: str | Path) -> Path:
    """``make host`` (gcc, ``-std=c99 -Wall -Wextra -Werror -O2``); returns the harness executable."""
    require_tools(HOST_TOOLS)
    _make(Path(project), "host")
    return Path(project) / "model_test"


def _sample_bytes(x: np.ndarray, size: int) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.int8).reshape(len(x), -1)
    if x.shape[1] != size:
        raise ValueError(f"samples of {x.shape[1]} bytes, the model takes {size}")
    return x.tobytes()


def run_host(project: str | Path, x: np.ndarray, input_size: int, output_size: int, timeout: float = 300) -> np.ndarray:
    """Run int8 samples ``x`` (N, ...) through the host harness; returns the (N, output_size) int8 outputs."""
    project = Path(project)
    (project / "input.bin").write_bytes(_sample_bytes(x, input_size))
    _run([str(project / "model_test"), "input.bin", "output.bin"], project, timeout)
    return np.fromfile(project / "output.bin", dtype=np.int8).reshape(len(x), output_size)


def build_arm(project: str | Path) -> Path:
    """``make arm`` (``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os``); returns ``model_m4.elf``."""
    require_tools(HOST_TOOLS[:1] + ARM_TOOLS)
    _make(Path(project), "arm")
    return Path(project) / "model_m4.elf"


def object_sections(path: str | Path) -> dict[str, int]:
    """``arm-none-eabi-size -A`` of one object, summed per section family (.text*, .rodata*, .data*, .bss*)."""
    out = _run(["arm-none-eabi-size", "-A", str(path)], Path(path).parent, 60).stdout
    sizes = dict.fromkeys(SECTIONS, 0)
    for line in out.splitlines():
        m = re.match(r"^\.(\w+)\S*\s+(\d+)\s", line)
        if m and m.group(1) in sizes:
            sizes[m.group(1)] += int(m.group(2))
    return sizes


def section_sizes(project: str | Path) -> dict[str, dict[str, int]]:
    """Per library object (``model``, ``weights``, ``kernels``) and ``total``: bytes per section family."""
    project = Path(project)
    per = {name: object_sections(project / "arm" / f"{name}.o") for name in LIBRARY_OBJECTS}
    per["total"] = {s: sum(per[n][s] for n in LIBRARY_OBJECTS) for s in SECTIONS}
    return per


@dataclass
class QemuRun:
    """Outputs of a QEMU run and the instruction count derived from the board timer."""

    outputs: np.ndarray
    timer_ticks: int
    calib_ticks: int
    calib_instructions: int

    @property
    def instructions_per_tick(self) -> float:
        return self.calib_instructions / self.calib_ticks

    @property
    def instructions(self) -> float:
        """Instructions of all inferences (±1 timer tick each, i.e. about ±40 instructions)."""
        return self.timer_ticks * self.instructions_per_tick


def run_qemu(project: str | Path, x: np.ndarray, input_size: int, output_size: int, timeout: float = 300) -> QemuRun:
    """Run int8 samples ``x`` on ``model_m4.elf`` under ``qemu-system-arm -M mps2-an386 -icount shift=0``."""
    require_tools(QEMU_TOOLS)
    project = Path(project)
    (project / "input.bin").write_bytes(_sample_bytes(x, input_size))
    (project / "output.bin").unlink(missing_ok=True)
    cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "null",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", "model_m4.elf"]
    out = _run(cmd, project, timeout).stdout
    found = dict(re.findall(r"^(samples|timer_ticks|calib_ticks|calib_instructions) (\d+)", out, flags=re.M))
    if len(found) != 4 or int(found["samples"]) != len(x):
        raise BuildError(f"qemu-system-arm: unexpected harness output: {out.strip()[-200:]!r}")
    y = np.fromfile(project / "output.bin", dtype=np.int8).reshape(len(x), output_size)
    return QemuRun(y, int(found["timer_ticks"]), int(found["calib_ticks"]), int(found["calib_instructions"]))
