"""``aseimd quickstart``: the Li | PEO | 1 M LiPF6 EC:DMC cell builds and runs end to end (short protocol).

Also the two pieces it needed: constrained pairs made contiguous before constraints act
(an X-H constraint split by a box edge blew up minimisation with HMR), and
layer edges from ``build.json``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import openmm as mm
import pytest

from aseimd.pipeline import build_layer_edges_nm, interface_system, run_pipeline
from aseimd.simulate.prepare import make_constraints_contiguous

pytest.importorskip("aseimd.build.interface")

#: A few hundred 4 fs HMR steps of the quickstart protocol's stages (the shipped one runs ~22 ps).
SHORT = {
    "name": "quickstart-test", "timestep_fs": 4.0, "hydrogen_mass_amu": 3.0, "seed": 5,
    "report": {"thermo_steps": 10, "trajectory_steps": 2, "checkpoint_steps": 1000},
    "stages": [
        {"type": "minimize", "max_iterations": 300},
        {"type": "nvt", "length_steps": 60},
        {"type": "npt", "length_steps": 60, "coupling": "z", "barostat_interval_steps": 10},
        {"type": "production", "length_steps": 400, "volume_from": "npt"},
    ],
}


def _finite(x) -> bool:
    return x is not None and math.isfinite(float(x))


def test_quickstart_cell_runs_end_to_end_and_reports_its_analyses(tmp_path):
    from aseimd.cli.quickstart import quickstart_spec

    spec = quickstart_spec("CPU", "quickstart", SHORT)
    assert spec.system["polymer"]["name"] == "PEO" and spec.system["cutoff_nm"] == 1.0
    job = tmp_path / "qs"
    result = run_pipeline(spec, job, progress=False)
    assert result.run.status == "finished" and result.run.n_frames == 200
    build = json.loads((job / "system" / "build.json").read_text())
    assert [layer["name"] for layer in build["layers"]] == ["slab", "polymer_bottom", "electrolyte", "polymer_top"]
    residues = {}
    for line in (job / "system" / "system.pdb").read_text().splitlines():
        if line.startswith(("ATOM", "HETATM")):
            residues.setdefault(line[17:20].strip(), set()).add(line[22:26])
    assert len(residues["LI"]) >= 4  # a few Li+ in the electrolyte

    profile = json.loads((job / "analysis" / "profile.json").read_text())
    assert {"Li", "PF6", "EC", "DMC", "PEO", "LiMetal"} <= set(profile["groups"])
    for g in profile["groups"].values():
        assert all(math.isfinite(v) for v in g["number_density_per_nm3"])
    assert (job / "analysis" / "profile_density.png").is_file()

    coord = json.loads((job / "analysis" / "coordination.json").read_text())
    assert {"PEO_O", "EC", "DMC", "PF6"} <= set(coord)
    assert coord["PEO_O"]["cutoff_nm"] == 0.30 and coord["PEO_O"]["cutoff_source"] == "given"
    for key in ("PEO_O", "EC", "DMC", "PF6"):
        if coord[key]["cutoff_nm"] is not None:  # an auto cut-off may be missing after a few ps
            assert _finite(coord[key]["cn"]) and coord[key]["cn"] >= 0

    # per layer: the Li+ in each mobile layer's z range, with the whole cell's cut-offs
    n_pairs = 0
    for name in ("polymer_bottom", "electrolyte", "polymer_top"):
        layer = json.loads((job / "analysis" / f"coordination_{name}.json").read_text())
        assert layer["window"]["layer"] == name and layer["window"]["n_frames"] == 200
        for key in ("PEO_O", "EC", "DMC", "PF6"):
            assert layer[key]["cutoff_nm"] == coord[key]["cutoff_nm"]
        n_pairs += layer["window"]["n_center_frames"]
    assert 0 < n_pairs <= 200 * coord["PEO_O"]["n_center_atoms"]  # the layers do not overlap

    diff = json.loads((job / "analysis" / "diffusion.json").read_text())
    assert _finite(diff["Li"]["D_m2_per_s"])
    layers = diff["Li"]["layers"]
    assert layers, "the electrolyte layer holds Li+ throughout"
    edges, names = build_layer_edges_nm(job / "system", job / "run")
    assert names == ["polymer_bottom", "electrolyte", "polymer_top"]
    for layer in layers:
        assert list(layer["z_range_nm"]) in [[lo, hi] for lo, hi in zip(edges[:-1], edges[1:])]
        assert _finite(layer["D_m2_per_s"])

    again = run_pipeline(spec, job, progress=False)  # rerun: everything kept
    assert again.run.status == "already finished" and again.computed == ()


def test_layer_edges_from_build_json(tmp_path):
    system, run = tmp_path / "system", tmp_path / "run"
    system.mkdir()
    run.mkdir()
    (system / "build.json").write_text(json.dumps({"box_nm": [2.0, 2.0, 10.0], "layers": [
        {"name": "slab", "z_nm": [0.0, 1.0]}, {"name": "polymer_bottom", "z_nm": [1.2, 3.0]},
        {"name": "electrolyte", "z_nm": [3.4, 6.6]}, {"name": "polymer_top", "z_nm": [7.0, 9.0]}]}))
    edges, names = build_layer_edges_nm(system, run)
    assert names == ["polymer_bottom", "electrolyte", "polymer_top"]
    assert edges == pytest.approx([1.1, 3.2, 6.8, 9.5])  # gap midpoints; last: midway to the slab image at 10
    (run / "run.json").write_text(json.dumps({"production_box_nm": [2.0, 2.0, 9.0]}))
    assert build_layer_edges_nm(system, run)[0] == pytest.approx([0.99, 2.88, 6.12, 8.55])


def test_interface_system_rejects_a_bad_spec():
    from aseimd.errors import SpecError

    with pytest.raises(SpecError, match="interface spec 'nope' not found"):
        interface_system("nope")
    with pytest.raises(SpecError, match="unknown key"):
        interface_system({"slab": {"face": "100", "layers": 3, "repeats": [6, 6]}, "polimer": None,
                          "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 2.0}})


def _chain_system(n_atoms: int) -> mm.System:
    """``n_atoms`` carbons in a chain of 0.15 nm constraints, plus one unconstrained atom."""
    system = mm.System()
    for _ in range(n_atoms + 1):
        system.addParticle(12.0)
    for i in range(n_atoms - 1):
        system.addConstraint(i, i + 1, 0.15)
    return system


def test_make_constraints_contiguous_against_a_direct_unwrap():
    """A constrained chain crossing a triclinic box, wrapped atom by atom, comes back whole (same images)."""
    rng = np.random.default_rng(1)
    box = np.array([[2.0, 0.0, 0.0], [0.5, 1.8, 0.0], [-0.3, 0.4, 2.2]])
    n = 40
    steps = rng.normal(size=(n - 1, 3))
    steps *= 0.15 / np.linalg.norm(steps, axis=1)[:, None]
    whole = np.array([0.1, 0.2, 0.3]) + np.vstack([np.zeros(3), np.cumsum(steps, axis=0)])
    frac = whole @ np.linalg.inv(box)
    wrapped = (frac - np.floor(frac)) @ box
    system = _chain_system(n)
    got, moved = make_constraints_contiguous(system, np.vstack([wrapped, [9.0, 9.0, 9.0]]), box)
    assert np.array_equal(got[-1], [9.0, 9.0, 9.0])
    got = got[:-1]
    assert moved > 0
    assert np.linalg.norm(np.diff(got, axis=0), axis=1) == pytest.approx(0.15, abs=1e-9)
    shift = got - whole  # whole chain displaced by one lattice vector at most: same for every atom
    assert np.abs(shift - shift[0]).max() < 1e-9
    n_lattice = shift[0] @ np.linalg.inv(box)
    assert np.abs(n_lattice - np.round(n_lattice)).max() < 1e-9
    again, moved_again = make_constraints_contiguous(system, np.vstack([got, [9.0, 9.0, 9.0]]), box)
    again = again[:-1]
    assert moved_again == 0 and np.array_equal(again, got)
