"""One pass for every analysis: reads counted, numbers alone = together = the pre-refactor streaming code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onepass_cell import make_cell

from aseimd.analysis import (
    CoordinationAnalysis,
    DiffusionAnalysis,
    ProfileAnalysis,
    SolventCNAnalysis,
    TransferenceAnalysis,
    run_analyses,
)
from aseimd.analysis.coordination import coordination
from aseimd.analysis.groups import load_positions, make_group
from aseimd.analysis.profile import density_profiles
from aseimd.analysis.solvent_cn import solvent_cn
from aseimd.analysis.trajectory import Trajectory

#: Numbers of the streaming analyses at commit 7040557 (before the one-pass engine) on make_cell()'s trajectory.
REFERENCE = json.loads((Path(__file__).parent / "data" / "onepass_reference.json").read_text())
SHELLS = {"EC": "resname EC and name O1", "PF6": "resname PF6 and element F"}
GIVEN = {"EC": 0.27, "PF6": 0.42}
SCN_CUTOFFS = {"N_nitrile-C_carbonyl": 0.36, "C_nitrile-C_carbonyl": 0.45}  # the Li shells: g(r) minima
SCN_ALL_GIVEN = {**SCN_CUTOFFS, "N_nitrile": 0.3, "O_carbonyl": 0.27, "anion": 0.42}
PROFILE_GROUPS = {"Li": "resname LI", "EC": "resname EC", "PF6": "resname PF6"}


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    return make_cell(tmp_path_factory.mktemp("onepass"))


def _traj(cell):
    return Trajectory(*cell, chunk_frames=50)


class CountingReads:
    """Wraps a Trajectory's chunk reader: passes (iter_chunks calls), frames and atom-frames delivered."""

    def __init__(self, traj, monkeypatch):
        self.calls, self.frames, self.atom_frames = [], 0, 0
        real = traj.iter_chunks

        def counted(atom_indices, chunk_frames=None):
            self.calls.append(np.asarray(atom_indices).size)
            for chunk in real(atom_indices, chunk_frames):
                self.frames += chunk.xyz_nm.shape[0]
                self.atom_frames += chunk.xyz_nm.shape[0] * chunk.xyz_nm.shape[1]
                yield chunk

        monkeypatch.setattr(traj, "iter_chunks", counted)
        self.dcd_frames = 0
        dcd = traj._dcd
        real_read = dcd.read

        def read(frames, atoms):
            self.dcd_frames += len(frames)
            return real_read(frames, atoms)

        monkeypatch.setattr(dcd, "read", read)


def _all_five(scn_cutoffs=SCN_ALL_GIVEN):
    return [
        DiffusionAnalysis({"Li": "resname LI", "PF6": "resname PF6"}, com=True),
        TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=300.0),
        CoordinationAnalysis({"Li": "resname LI"}, SHELLS, anion="PF6", cutoffs_nm=GIVEN, residence=True),
        SolventCNAnalysis(cutoffs_nm=scn_cutoffs),
        ProfileAnalysis(PROFILE_GROUPS, bin_nm=0.1),
    ]


def _same(a, b, path=""):
    """Recursive exact equality of JSON-like documents (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple, np.ndarray)):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{k}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert (np.isnan(a) and np.isnan(b)) or a == b, (path, a, b)
    else:
        assert a == b, (path, a, b)


def _json(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o)),
                      parse_constant=lambda c: float(c))


def _ref_float(x):
    return float(x.strip("'")) if isinstance(x, str) else x


def _close_to_reference(doc, ref, path=""):
    """Equal to the recorded pre-refactor numbers (to 1e-12 relative: JSON round trip), NaN where NaN."""
    if isinstance(ref, dict):
        assert set(ref) <= set(doc), (path, set(ref) - set(doc))  # additions are fine
        for k in ref:
            _close_to_reference(doc[k], ref[k], f"{path}.{k}")
    elif isinstance(ref, list):
        assert len(doc) == len(ref), path
        for k, (x, y) in enumerate(zip(doc, ref)):
            _close_to_reference(x, y, f"{path}[{k}]")
    elif isinstance(ref, (float, int)) and not isinstance(ref, bool) or (isinstance(ref, str) and ref == "nan"):
        r, d = _ref_float(ref), float(doc)
        assert (np.isnan(r) and np.isnan(d)) or d == pytest.approx(r, rel=1e-12, abs=1e-15), (path, d, r)
    else:
        assert doc == ref, (path, doc, ref)


def test_five_analyses_read_the_trajectory_once(cell, monkeypatch):
    traj = _traj(cell)
    reads = CountingReads(traj, monkeypatch)
    run_analyses(traj, _all_five())
    assert len(reads.calls) == 1  # one pass: diffusion, transference, coordination, solvent-CN and profiles
    assert reads.frames == traj.n_frames
    assert reads.calls[0] == traj.topology.n_atoms  # the union (every atom: the system centre of mass)
    # the DCD itself: every frame once, plus the one-frame, one-atom box probe (the RDF range) at prepare
    assert reads.dcd_frames == traj.n_frames + 1


def test_auto_cutoffs_add_one_pass_over_the_coordination_atoms_only(cell, monkeypatch):
    traj = _traj(cell)
    reads = CountingReads(traj, monkeypatch)
    analyses = _all_five(SCN_CUTOFFS)  # solvent-CN: Li-shell cut-offs from g(r)
    # g(r) minima; the fixed-prominence rule finds them in this cell (see test_the_significance_rule_...)
    analyses[2] = CoordinationAnalysis({"Li": "resname LI"}, SHELLS, anion="PF6", residence=True,
                                       cutoff_rule="prominence")
    analyses[3] = SolventCNAnalysis(cutoffs_nm=SCN_CUTOFFS, cutoff_rule="prominence")
    run_analyses(traj, analyses)
    li_shells = {"Li": "resname LI", **SHELLS}
    coordination_atoms = np.unique(np.concatenate([traj.topology.select(s) for s in li_shells.values()]))
    assert reads.calls[0] == traj.topology.n_atoms and len(reads.calls) == 2  # contacts need the whole g(r) first
    assert reads.calls[1] < traj.topology.n_atoms / 2  # ... over the atoms of those two analyses only
    assert reads.calls[1] >= coordination_atoms.size
    assert reads.frames == 2 * traj.n_frames


def test_every_analysis_gives_the_same_numbers_alone_and_together(cell):
    together = run_analyses(_traj(cell), _all_five())
    alone = [run_analyses(_traj(cell), [a])[0] for a in _all_five()]
    for t, a in zip(together, alone):
        _same(_json(t.to_json() if hasattr(t, "to_json") else t.tables()),
              _json(a.to_json() if hasattr(a, "to_json") else a.tables()))
        _same(_json(t.tables()), _json(a.tables()))


def test_transport_analyses_with_different_groups_share_a_read_bit_for_bit(cell):
    # diffusion selects EC too, transference does not: the shared position collector unwraps every atom
    # elementwise for the system drift, so each gets exactly the numbers it gets alone (the pipeline relies
    # on this to read once and still write what `aseimd analyze` writes)
    def pair():
        return [DiffusionAnalysis({"Li": "resname LI", "PF6": "resname PF6", "EC": "resname EC"}, com=True),
                TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=300.0)]

    together = run_analyses(_traj(cell), pair())
    alone = [run_analyses(_traj(cell), [a])[0] for a in pair()]
    for t, a in zip(together, alone):
        _same(_json(t.to_json()), _json(a.to_json()))
        _same(_json(t.tables()), _json(a.tables()))


def test_streaming_analyses_match_the_pre_refactor_numbers(cell):
    # the reference's auto cut-offs were found with the fixed-prominence rule (the default before the
    # noise-aware one), which is kept as cutoff_rule="prominence" to reproduce them
    traj = _traj(cell)
    c = coordination(traj, {"Li": "resname LI"}, SHELLS, anion="PF6", residence=True, cutoff_rule="prominence")
    _close_to_reference(_json(c.to_dict()), REFERENCE["coordination_auto"])
    _close_to_reference(_json(c.rdf_table()[1]), REFERENCE["coordination_auto_rdf"])
    _close_to_reference(_json(c.residence_table()[1]), REFERENCE["coordination_auto_residence"])
    assert c.pairs["EC"].cutoff_source == "auto" and 0.22 < c.pairs["EC"].cutoff_nm < 0.33
    five = _all_five(SCN_CUTOFFS)
    five[3] = SolventCNAnalysis(cutoffs_nm=SCN_CUTOFFS, cutoff_rule="prominence")
    _, coord, scn, prof = run_analyses(_traj(cell), five[1:])
    _close_to_reference(_json(coord.to_dict()), REFERENCE["coordination_given"])
    _close_to_reference(_json(coord.rdf_table()[1]), REFERENCE["coordination_given_rdf"])
    _close_to_reference(_json(scn.to_dict()), REFERENCE["solvent_cn"])
    _close_to_reference(_json(solvent_cn(_traj(cell), cutoffs_nm=SCN_CUTOFFS, cutoff_rule="prominence").to_dict()),
                        REFERENCE["solvent_cn"])
    ref = REFERENCE["profile"]
    for p in (prof, density_profiles(_traj(cell), PROFILE_GROUPS, bin_nm=0.1)):
        for label, g in p.groups.items():
            _close_to_reference(_json({"n": g.number_density_per_nm3, "nse": g.number_density_stderr_per_nm3,
                                       "q": g.charge_density_e_per_nm3}), ref[label])
        assert p.warnings == REFERENCE["profile_warnings"]


def test_the_significance_rule_finds_no_minimum_where_this_cell_has_none(cell):
    """By construction (onepass_cell.py) the Li-O(EC) g(r) is a spike at 0.21 nm on a flat background
    (bound O1 at exactly 0.21 nm from their Li+, every other O1 placed independently of it) and the
    Li-F(PF6) g(r) a shell from 0.17 to 0.49 nm (F of PF6 paired at 0.33 nm) on a flat background:
    after the first shell neither has a minimum. The fixed-prominence rule took noise dips of the
    background as cut-offs (0.2675 and 0.5625 nm in the reference); the noise-aware rule finds
    neither significant and says so, with the best dip's significance."""
    c = coordination(_traj(cell), {"Li": "resname LI"}, SHELLS, anion="PF6")
    ref = REFERENCE["coordination_auto"]
    assert (ref["EC"]["cutoff_nm"], ref["PF6"]["cutoff_nm"]) == (0.2675, 0.5625)
    for key in ("EC", "PF6"):
        p = c.pairs[key]
        fm = p.first_minimum
        assert p.cutoff_nm is None and fm.method == "significance" and not fm.found
        assert fm.r_peak_nm == pytest.approx(ref[key]["r_peak_nm"])  # the same first peak
        assert fm.best_sigma < fm.z_sigma
        assert p.to_dict()["first_minimum"]["best_rejected"]["sigma"] == pytest.approx(fm.best_sigma)
        assert any(f"g(r) of {key!r}" in w and "sigma" in w for w in c.warnings)
    old = coordination(_traj(cell), {"Li": "resname LI"}, SHELLS, cutoff_rule="prominence")
    assert old.pairs["EC"].first_minimum.method == "prominence"
    assert old.pairs["EC"].cutoff_nm == 0.2675 and old.pairs["PF6"].cutoff_nm == 0.5625


def test_position_collector_matches_the_pre_refactor_positions(cell):
    traj = _traj(cell)
    gs = [make_group(traj, "Li", "resname LI", com=True), make_group(traj, "PF6", "resname PF6", com=True)]
    pos = load_positions(traj, gs, drift="system")
    # the reference was recorded with the old float32 sum of minimum-image steps; the constant-box unwrap
    # now counts integer image jumps (exact), so the two agree to float32 accumulation error (~1e-6 nm)
    np.testing.assert_allclose(pos.of("Li")[-1], np.float32(REFERENCE["positions_li_last"]), rtol=0, atol=2e-6)
    np.testing.assert_allclose(pos.of("PF6")[-1], np.float32(REFERENCE["positions_pf6_last"]), rtol=0, atol=2e-6)
    np.testing.assert_allclose(pos.drift_nm[-1], REFERENCE["drift_last"], rtol=0, atol=2e-6)
