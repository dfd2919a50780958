"""The README's `## Python API` section runs as written, in order, from any folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def api_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_promised_examples():
    code = "\n".join(api_blocks())
    for needle in (
        "MomentumLaw(",
        "MultiPowerLaw(",
        "Schedule.wsd(",
        "sweep_wsd(",
        "optimize_schedule(",
        "class ShiftedLogistic(Task)",
        "optimize(ShiftedLogistic()",
        "analyze(result)",
    ):
        assert needle in code, needle


def test_python_api_blocks_run_in_order_from_another_folder(tmp_path):
    script = tmp_path / "readme_api.py"
    script.write_text("\n\n".join(api_blocks()), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert "acceleration ratio (test):" in out and "SIM: uniform" in out
    assert "[ True]" in out  # the saved law predicts what the fitted one does
    assert [p.name for p in tmp_path.iterdir()] == ["readme_api.py"]  # nothing written
