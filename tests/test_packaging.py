"""The wheel built from the repository, installed without `-e`, runs `compare` outside the checkout."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Builds a wheel and trains in a subprocess (a minute or two): `.ci/run` runs it after `make test`.
@pytest.mark.slow
def test_the_built_wheel_runs_compare_outside_the_checkout(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            ROOT], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if built.returncode and "Could not find a version" in built.stderr:
        pytest.skip(f"no package index to build with: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    wheel = glob.glob(str(tmp_path / "dist" / "keras_edda-*.whl"))
    assert len(wheel) == 1
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                                wheel[0]], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "2"}
    where = subprocess.run([sys.executable, "-c", "import keras_edda; print(keras_edda.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "keras_edda", "compare", "--methods", "none,edda", "--seeds", "1", "--epochs", "1",
         "--max-train", "16", "--batch-size", "16", "--eval-samples", "4", "--monitor-samples", "4",
         "--num-images", "2", "--verbose", "0", "--metric", "deletion_auc", "--eval-fill", "blur",
         "--out", "out"], cwd=work, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    results = json.loads((work / "out" / "results.json").read_text())
    assert sorted(run["method"] for run in results["runs"]) == ["edda", "none"]
