"""The README's Python example, run as written."""

import os
import re
import subprocess
import sys

from conftest import ROOT


def readme_example() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- python-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no python example block"
    return m.group(1)


def test_readme_example_runs_as_written(tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 10
    # From an empty folder: the package finds the repository's models and MNIST files itself.
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, check=True)
    m = re.fullmatch(r"accuracy (\d+\.\d\d)%, agreement with plain (\d+\.\d\d)%\n", out.stdout)
    assert m, out.stdout + out.stderr
    accuracy, agreement = float(m.group(1)), float(m.group(2))
    assert accuracy >= 98.0 and agreement == 100.0
    assert out.stderr == ""  # nothing printed unasked
