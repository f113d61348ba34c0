"""Ray: the tests of tests/ray_suite.py on a real local cluster, in a private network
namespace (``unshare -n``, loopback only) so that Ray sends nothing beyond this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
TESTS = Path(__file__).parent


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare and ip to make a private network namespace",
)
def test_ray_suite_in_a_private_network_namespace():
    command = (
        "ip link set lo up && exec "
        f"{sys.executable} -m pytest {TESTS / 'ray_suite.py'} -q -p no:cacheprovider -rs"
    )
    # Ray's workers import the test module's worker class: tests/ on their path too.
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "passed" in summary and "skipped" not in summary and "failed" not in summary
