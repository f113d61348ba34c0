"""The machine a benchmark ran on, named with every figure it prints.

Timings on one CPU say little about another (native bfloat16, AVX-512 and AMX change the
ratios), and a busy machine distorts them: :func:`describe` gives the CPU model, its
relevant instruction-set flags, the core and thread counts and the load when it was called.
"""

from __future__ import annotations

import os
import platform
import subprocess

import torch

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
"""Instruction-set extensions that change how fast the network runs on a CPU."""


def cpu_model() -> str:
    """The CPU's name; on Linux with its family/model numbers (virtual machines often report
    only a generic name such as "AMD EPYC")."""
    if platform.system() == "Darwin":
        return subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True
        ).stdout.strip()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            fields = dict(
                (key.strip(), value.strip())
                for key, _, value in (line.partition(":") for line in handle)
                if value
            )
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def cpu_flags() -> list[str]:
    """Which of :data:`FLAGS` this CPU has (Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            line = next(line for line in handle if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.partition(":")[2].split())
    return [flag for flag in FLAGS if flag in have]


def describe() -> str:
    """One line: CPU, flags, cores, torch threads and build, and the current load."""
    flags = " ".join(cpu_flags()) or "no flags read"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"CPU: {cpu_model()}; {flags}; {os.cpu_count()} cores; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} thread(s), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; load average {load}"
    )


if __name__ == "__main__":
    print(describe())
