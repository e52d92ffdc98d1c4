"""Chain growth: crowded PAN builds, torsion statistics of the walk, the Rosenbluth choice, candidates."""

from __future__ import annotations

import numpy as np
import pytest

from aseimd.build import chain_growth as cg
from aseimd.build.polymer import PolymerSpec, build_polymer_layer, chain_sequence, tacticity_signs


def _blueprint(name, dp, seed=0):
    from aseimd.build.ffgeometry import ff_geometry
    from aseimd.forcefield.loader import residue_templates

    spec = PolymerSpec(name, n_repeat=dp)
    return cg.blueprint(chain_sequence(spec, np.random.default_rng(seed)), residue_templates(), ff_geometry(), 300.0)


def _bulk_box_nm(bps, density_g_per_cm3, fraction=0.5):
    from openmm.app import Element

    mass = sum(Element.getBySymbol(e).mass._value for b in bps for e in b.elements)
    return np.full(3, (mass / 6.02214076e23 / (fraction * density_g_per_cm3) * 1e21) ** (1 / 3))


def _states_of_backbone_torsions(bp, xyz):
    """(variable, state) of every backbone torsion variable measured on coordinates (0 t, 1 g+, 2 g-)."""
    bb = {int(a) for a in bp.backbone}
    out = []
    for st in bp.steps:
        for op in st:
            if op[0] == 0 and op[7] >= 0 and op[1] in bb:
                _, x, d, g, p = op[:5]
                phi = cg.dihedral(xyz[d], xyz[g], xyz[p], xyz[x])
                out.append((op[7], 0 if abs(phi) > 2 * np.pi / 3 else (1 if phi > 0 else 2)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pan_dp60_grows_in_a_bulk_box_at_half_density(seed):
    """Six atactic PAN chains of DP 60 at 50 % of the melt density (seed 1 failed before the Rosenbluth step)."""
    spec = PolymerSpec("PAN", n_repeat=60)
    rng = np.random.default_rng(seed)
    bps = [_blueprint("PAN", 60, seed) for _ in range(6)]
    n = sum(b.n_atoms for b in bps)
    box = _bulk_box_nm(bps, spec.polymer.density_g_per_cm3)
    grower = cg.ChainGrower(cg.GrowthRegion(box, True), n, rng)
    off = 0
    chains = []
    for b in bps:
        xyz = grower.grow(b, off, tacticity_signs("atactic", len(b.stereocentres), rng), free_stereo=True)
        assert np.array_equal(cg.stereo_signs_measured(b, xyz), grower.last_signs)
        chains.append(xyz)
        off += b.n_atoms
    # independent all-pairs check between chains (minimum image): nothing closer than the growth contact
    allxyz = np.concatenate(chains)
    owner = np.repeat(np.arange(len(bps)), [b.n_atoms for b in bps])
    heavy = np.array([e != "H" for b in bps for e in b.elements])
    h = np.flatnonzero(heavy)
    d = allxyz[h][:, None] - allxyz[h][None]
    d -= box * np.round(d / box)
    r = np.sqrt((d ** 2).sum(-1))
    other = owner[h][:, None] != owner[h][None]
    assert r[other].min() > 2 * cg.GROWTH_RADIUS_HEAVY_NM * 0.85 - 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_pan_builds_in_a_2nm_layer(seed):
    cell = build_polymer_layer(PolymerSpec("PAN", n_repeat=20), box_xy_nm=(3.5, 3.5), thickness_nm=2.0, seed=seed)
    p = cell.provenance
    assert cell.positions_nm[:, 2].min() >= 0 and cell.positions_nm[:, 2].max() <= 2.0
    assert p["stereo_measured"] == p["stereo_requested"]  # built signs survive the relaxation
    assert p["growth"]["full_evaluations"] > 0  # the crowded layer needed the all-states step


@pytest.mark.parametrize("quick_draws", [4, 0])
def test_free_chain_torsion_states_follow_the_force_field_weights(quick_draws):
    """Without overlaps to reject (tiny contact radii), chosen states are distributed as the FF Boltzmann weights.

    Both paths: rejection sampling from the weights (quick draws) and the Rosenbluth choice among all
    enumerated states (``quick_draws=0``). A uniform choice, or a first-fit scan of the enumerated list,
    fails this by tens of standard deviations.
    """
    bp = _blueprint("PEO", 30)
    rng = np.random.default_rng(7)
    obs = np.zeros((len(bp.var_probs), 3))
    for _ in range(12):
        grower = cg.ChainGrower(cg.GrowthRegion(np.full(3, 40.0), True), bp.n_atoms, rng,
                                overlap_scale=0.05, quick_draws=quick_draws)
        xyz = grower.grow(bp, 0, np.zeros(0, dtype=int))
        assert grower.stats["backtracks"] == 0
        for var, s in _states_of_backbone_torsions(bp, xyz):
            obs[var, s] += 1
    used = obs.sum(axis=1) > 0
    # pooled per torsion type (variables with the same weights): counts of trans / gauche+ / gauche-
    rows, group = np.unique(np.round(bp.var_probs[used], 6), axis=0, return_inverse=True)
    o = np.array([obs[used][group.ravel() == k].sum(axis=0) for k in range(len(rows))])
    exp = rows * o.sum(axis=1, keepdims=True)
    assert np.all(np.abs(o - exp) < 4.0 * np.sqrt(exp)), (o, exp)
    chi2 = ((o - exp) ** 2 / exp).sum()
    dof = 2 * len(o)
    assert chi2 < dof + 5 * np.sqrt(2 * dof), (o, exp)
    # the weights are far from uniform (O-C-C-O prefers gauche, C-O-C-C trans): a uniform choice fails
    assert np.ptp(rows) > 0.2


def test_rosenbluth_choice_picks_fitting_candidates_by_weight():
    rng = np.random.default_rng(3)
    w = np.array([0.5, 0.2, 0.2, 0.1])
    ok = np.array([True, False, True, True])
    picks = np.bincount([cg.rosenbluth_choice(rng, w, ok) for _ in range(20000)], minlength=4)
    assert picks[1] == 0
    expected = np.where(ok, w, 0) / w[ok].sum() * 20000
    assert np.all(np.abs(picks - expected) < 4 * np.sqrt(expected + 1))
    assert cg.rosenbluth_choice(rng, w, np.zeros(4, dtype=bool)) == -1


def test_crowded_growth_chooses_among_fitting_states_in_proportion_to_their_weights(monkeypatch):
    """In a crowded box the all-states step only takes candidates that fit, each by its FF weight."""
    calls = []
    real = cg.rosenbluth_choice

    def recording(rng, w, ok):
        ci = real(rng, w, ok)
        calls.append((np.where(ok, w, 0.0) / max(np.where(ok, w, 0.0).sum(), 1e-300), ci, ok.copy()))
        return ci

    monkeypatch.setattr(cg, "rosenbluth_choice", recording)
    spec = PolymerSpec("PAN", n_repeat=40)
    rng = np.random.default_rng(0)
    bps = [_blueprint("PAN", 40, 0) for _ in range(6)]
    box = _bulk_box_nm(bps, spec.polymer.density_g_per_cm3, fraction=0.5)
    grower = cg.ChainGrower(cg.GrowthRegion(box, True), sum(b.n_atoms for b in bps), rng, quick_draws=0)
    off = 0
    for b in bps:
        grower.grow(b, off, tacticity_signs("atactic", len(b.stereocentres), rng), free_stereo=True)
        off += b.n_atoms
    chosen = [(p, ci) for p, ci, ok in calls if ci >= 0]
    assert len(chosen) > 200
    assert all(ok[ci] for _p, ci, ok in calls if ci >= 0)
    # the chosen candidate's probability: its mean over calls must match E[p_chosen] = sum p^2
    # (a uniform choice among fitting candidates gives a visibly smaller mean when weights differ)
    got = np.array([p[ci] for p, ci in chosen])
    want = np.array([(p ** 2).sum() for p, _ in chosen])
    var = np.array([(p ** 3).sum() - (p ** 2).sum() ** 2 for p, _ in chosen])
    assert abs(got.sum() - want.sum()) < 4 * np.sqrt(var.sum())
    assert any((p > 0).sum() < len(p) for p, _ in chosen)  # some candidates were really rejected
