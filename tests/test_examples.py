"""Each example runs as a script (its short mode, KERAS_EDDA_QUICK=1)."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))


def test_there_are_six_examples():
    assert len(EXAMPLES) == 6


def marked(path):
    # tests/test_multi_worker.py runs 06's workers in the default run.
    slow = os.path.basename(path).startswith("06")
    return pytest.param(path, marks=pytest.mark.slow) if slow else path


@pytest.mark.parametrize("path", [marked(path) for path in EXAMPLES], ids=os.path.basename)
def test_example_runs(path, tmp_path):
    env = {**os.environ, "KERAS_EDDA_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_EDDA_LOG_DIR": str(tmp_path / "logs"), "KERAS_EDDA_OUT": str(tmp_path / "out")}
    result = subprocess.run([sys.executable, path], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    name = os.path.basename(path)
    if name.startswith("03"):
        assert os.listdir(tmp_path / "logs" / "validation")
    if name.startswith("04"):
        assert (tmp_path / "out" / "grad_cam_mobilenetv2.png").stat().st_size > 0
    if name.startswith("06"):
        assert "two workers and one process trained the same weights" in result.stdout
