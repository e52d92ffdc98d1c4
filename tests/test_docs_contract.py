"""The worked examples of docs/analysis_contract.md are run as written (the docs cannot drift from the code)."""

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysis_contract.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_its_examples():
    blocks = _blocks()
    assert len(blocks) == 2
    assert "def feed(self, chunk)" in blocks[0] and "def end_pass(self)" in blocks[0]
    assert 'return [self.group], "system"' in blocks[1]


def test_worked_examples_run_and_their_checks_hold(monkeypatch):
    """Both blocks in one namespace (the second uses the first's trajectory), the engine's pass counted."""
    from aseimd.analysis import engine

    passes = []
    real = engine.stream
    monkeypatch.setattr(engine, "stream", lambda traj, streams: passes.append(real(traj, streams)) or passes[-1])
    namespace: dict = {}
    for block in _blocks():
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert passes == [1, 1]  # the custom stream and the diffusion collector shared one read; then one more run
    height, diffusion, traj = namespace["height"], namespace["diffusion"], namespace["traj"]
    assert height.to_json()["z_nm"] == pytest.approx(float(np.mean(traj.xyz[:, :, 2])), abs=1e-6)
    assert np.isfinite(height.z_stderr_nm) and height.z_stderr_nm > 0
    assert diffusion.to_json()["Li"]["n_particles"] == 20


def test_a_bad_selection_in_a_custom_analysis_is_the_usual_one_line_error():
    from aseimd.analysis import run_analyses
    from aseimd.errors import AnalysisError

    namespace: dict = {}
    exec(compile(_blocks()[0], str(DOC), "exec"), namespace)  # noqa: S102
    with pytest.raises(AnalysisError, match="selection 'resname NOPE' matches no atoms"):
        run_analyses(namespace["traj"], [namespace["MeanHeight"]("resname NOPE")])
