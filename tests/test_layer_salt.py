"""Li salt in polymer layers (build/layer_salt.py): spec validation, a small salted PEO layer, and the
full-charge ion pairs excluded from the LJ force (CPU refused TFSI at charge_scale < 1 before)."""

from __future__ import annotations

import numpy as np
import openmm as mm
import pytest
from openmm import unit

from aseimd.build.spec import load_interface_spec
from aseimd.errors import SpecError

BASE = {"slab": {"face": "100", "layers": 3, "lateral_nm": [2.1, 2.1]},
        "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 2.4}, "cutoff_nm": 1.0}


def _spec(polymer):
    return load_interface_spec({**BASE, "polymer": polymer})


@pytest.mark.parametrize("polymer, match", [
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiXYZ"}, "polymer.salt 'LiXYZ' unknown"),
    ({"name": "PEO", "thickness_nm": 1.0, "eo_per_li": 16}, "eo_per_li given without polymer.salt"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "eo_per_li": 0.5}, "eo_per_li 0.5 impossible"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "eo_per_li": -3}, "impossible"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "an_per_li": 8}, "an_per_li does not apply to PEO"),
    ({"name": "PAN", "thickness_nm": 1.0, "salt": "LiPF6"}, "needs polymer.an_per_li"),
    ({"name": "PDMS", "thickness_nm": 1.0, "salt": "LiPF6"}, "not allowed for PDMS"),
    ({"name": "LiNafion", "thickness_nm": 1.0, "salt": "LiPF6"}, "not allowed for LiNafion"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "eo_per_Li": 16}, "unknown key 'eo_per_Li'"),
])
def test_bad_salt_options_are_one_line_spec_errors(polymer, match):
    with pytest.raises(SpecError, match=match) as exc:
        _spec(polymer)
    assert "\n" not in str(exc.value)


def test_salt_defaults_to_eo_li_16_in_peo():
    s = _spec({"name": "PEO", "thickness_nm": 1.0, "salt": "litfsi"}).polymer.layer_salt()
    assert (s.salt, s.ratio, s.host.ratio_key) == ("LiTFSI", 16.0, "eo_per_li")


def test_salted_peo_layer_is_neutral_clean_and_runs():
    from aseimd.build.geometry import min_nonbonded_distance_nm, speared_rings
    from aseimd.build.layer_salt import build_salted_layer, validate_layer_salt
    from aseimd.build.polymer import PolymerSpec
    from aseimd.forcefield.system import create_system

    salt = validate_layer_salt("PEO", "LiTFSI", {"eo_per_li": 16})
    cell = build_salted_layer(PolymerSpec("PEO", n_repeat=8), salt, box_xy_nm=(2.106, 2.106), thickness_nm=1.0,
                              seed=11)
    res = [r.name for r in cell.topology.residues()]
    n_eo = sum(1 for a in cell.topology.atoms() if a.element.symbol == "O" and a.residue.name in ("PEH", "PEO", "PET"))
    n_li, n_tfsi = res.count("LI"), res.count("TFS")
    assert n_li == n_tfsi == round(n_eo / 16) >= 1
    assert cell.provenance["salt"]["ion_pairs"] == n_li
    assert cell.provenance["salt"]["ratio_achieved"] == pytest.approx(n_eo / n_li)
    periodic = (True, True, False)
    assert min_nonbonded_distance_nm(cell.topology, cell.positions_nm, cell.box_nm, periodic) >= 0.1
    assert speared_rings(cell.topology, cell.positions_nm, cell.box_nm, periodic) == []
    ions = [a.index for a in cell.topology.atoms() if a.residue.name in ("LI", "TFS")]
    z = cell.positions_nm[ions, 2]
    assert z.min() >= 0.0 and z.max() <= 1.0
    # neutral; minimise and a few hundred steps in a padded periodic box, on CPU at the default charge scale
    top = cell.topology
    box = np.array([cell.box_nm[0], cell.box_nm[1], 3.2])
    top.setPeriodicBoxVectors(np.diag(box) * unit.nanometer)
    system = create_system(top, charge_scale=0.8, cutoff_nm=1.0, constraints="HBonds")
    integ = mm.LangevinMiddleIntegrator(298.15, 1.0, 0.001)
    ctx = mm.Context(system, integ, mm.Platform.getPlatformByName("CPU"))
    ctx.setPositions(cell.positions_nm + np.array([0, 0, 1.1]))
    mm.LocalEnergyMinimizer.minimize(ctx, 10.0, 500)
    integ.step(300)
    state = ctx.getState(getEnergy=True, getPositions=True)
    assert np.isfinite(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    assert np.all(np.isfinite(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)))


def test_tfsi_at_scaled_charge_runs_on_cpu_with_the_same_energy(monkeypatch):
    """Full-charge 1-5+ pairs of TFSI are excluded from the LJ force too (energy unchanged, CPU accepts it)."""
    import aseimd.forcefield.system as fsys
    from aseimd.build.cell import topology_from_molecules
    from aseimd.build.molecule import molecule

    m, li = molecule("TFSI"), molecule("Li")
    top = topology_from_molecules([(m, 1), (li, 1)])
    top.setPeriodicBoxVectors(np.eye(3) * 3.0 * unit.nanometer)
    pos = np.concatenate([m.positions_nm, [[1.0, 1.0, 1.0]]]) + 1.5

    def energy(system, platform):
        ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))
        ctx.setPositions(pos)
        return ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    fixed = fsys.create_system(top, charge_scale=0.8, cutoff_nm=1.0)
    monkeypatch.setattr(fsys, "keep_lj_of_new_exceptions", lambda *a: 0)
    old = fsys.create_system(top, charge_scale=0.8, cutoff_nm=1.0)  # the previous construction (Reference only)
    e_old = energy(old, "Reference")
    assert energy(fixed, "Reference") == pytest.approx(e_old, rel=1e-9, abs=1e-6)
    assert energy(fixed, "CPU") == pytest.approx(e_old, rel=1e-5)


# --- start-density fallback and stereo of salted layers (the code the neat layers use) ---------------------------

SALTED_PEO = dict(box_xy_nm=(2.106, 2.106), thickness_nm=1.0, seed=11)


def _salted_peo():
    from aseimd.build.layer_salt import build_salted_layer, validate_layer_salt
    from aseimd.build.polymer import PolymerSpec

    return build_salted_layer(PolymerSpec("PEO", n_repeat=8), validate_layer_salt("PEO", "LiTFSI", {}), **SALTED_PEO)


def _fail_in_the_first_start_box(monkeypatch, where):
    """Make the attempt at the first start density (a layer 2 x the final thickness) fail in the chain growth
    or in the ion insertion; later (looser, thicker) attempts run as they are.  Returns the relax_cell calls."""
    import aseimd.build.chain_growth as cg
    import aseimd.build.layer_salt as ls
    import aseimd.build.relax as rx
    from aseimd.errors import BuildError

    first_z = SALTED_PEO["thickness_nm"] / 0.5

    def first(z_nm):
        return abs(z_nm - first_z) < 1e-9

    if where == "growth":
        real_grow = cg.ChainGrower.grow

        def grow(self, bp, offset, *a, **kw):
            if first(float(self.region.box_nm[2])) and offset > 0:  # the second chain finds no room
                raise BuildError("could not grow a chain (forced)")
            return real_grow(self, bp, offset, *a, **kw)

        monkeypatch.setattr(cg.ChainGrower, "grow", grow)
    else:
        real_insert = ls.insert_ions

        def insert(positions_nm, box_nm, *a, **kw):
            if first(float(box_nm[2])):
                raise BuildError("no room for ion 1 (forced)")
            return real_insert(positions_nm, box_nm, *a, **kw)

        monkeypatch.setattr(ls, "insert_ions", insert)
    calls = []
    real_relax = rx.relax_cell

    def relax(top, pos, **kw):
        calls.append({"start": np.asarray(kw["start_box_nm"], dtype=float), "z_max": float(np.max(pos[:, 2])),
                      "stereocentres": kw.get("stereocentres")})
        return real_relax(top, pos, **kw)

    monkeypatch.setattr(rx, "relax_cell", relax)
    return calls


@pytest.mark.parametrize("where", ["growth", "insertion"])
def test_salted_layer_that_fails_at_the_first_start_density_grows_at_a_fallback(monkeypatch, where):
    import aseimd.build.polymer as polymer
    from aseimd.build.geometry import min_nonbonded_distance_nm
    from aseimd.errors import BuildError

    assert polymer.GROWTH_DENSITY_FALLBACKS[:2] == (0.5, 0.35)
    calls = _fail_in_the_first_start_box(monkeypatch, where)
    cell = _salted_peo()
    growth = cell.provenance["growth"]
    assert growth["growth_density_fraction"] == 0.35
    assert growth["growth_failures"] == ["growth at 0.5 of the final density failed"]
    # the relaxation starts from the box the chains and ions were really put in (1 / 0.35 x the thickness)
    (call,) = calls
    np.testing.assert_allclose(call["start"], [2.106, 2.106, 1.0 / 0.35])
    assert 1.0 / 0.5 < call["z_max"] <= 1.0 / 0.35
    pos = cell.positions_nm
    assert pos[:, 2].min() >= 0.0 and pos[:, 2].max() <= 1.0
    assert min_nonbonded_distance_nm(cell.topology, pos, cell.box_nm, (True, True, False)) >= 0.1
    n_eo = sum(1 for a in cell.topology.atoms() if a.element.symbol == "O" and a.residue.name in ("PEH", "PEO", "PET"))
    assert cell.provenance["salt"]["ion_pairs"] == round(n_eo / 16) >= 1
    # without the fallback the same build fails, in one line naming what was tried
    monkeypatch.setattr(polymer, "GROWTH_DENSITY_FALLBACKS", (0.5,))
    with pytest.raises(BuildError, match=r"^PEO: .*\(forced\) \(growth tried at 0.5 of the final density\)$"):
        _salted_peo()


def _salted_pan(tacticity, seed):
    from aseimd.build.layer_salt import build_salted_layer, validate_layer_salt
    from aseimd.build.polymer import PolymerSpec

    spec = PolymerSpec("PAN", n_repeat=12, tacticity=tacticity)
    cell = build_salted_layer(spec, validate_layer_salt("PAN", "LiPF6", {"an_per_li": 6}), box_xy_nm=(2.0, 2.0),
                              thickness_nm=1.2, seed=seed)
    return spec, cell


def _stereo_read_back(spec, cell):
    """Configuration of every stereocentre of every chain, read off the final (wrapped) coordinates."""
    from aseimd.build.chain_growth import blueprint, stereo_signs_measured
    from aseimd.build.ffgeometry import ff_geometry
    from aseimd.build.polymer import chain_sequence
    from aseimd.forcefield.loader import residue_templates

    bp = blueprint(chain_sequence(spec, np.random.default_rng(0)), residue_templates(), ff_geometry(), 300.0)
    out, off = [], 0
    for _ in range(cell.provenance["polymer"]["chains"]):
        out.append(stereo_signs_measured(bp, cell.positions_nm[off:off + bp.n_atoms], cell.box_nm))
        off += bp.n_atoms
    return out


# Salted PAN layers grown at 0.25 of the final density (a 4x compression in z under the soft core): with no
# chirality restraint these seeds invert stereocentres (isotactic seed 1: 2 of 44, syndiotactic seed 9: 1-2 of 44,
# measured; see the control below).
STEREO_CASES = [("isotactic", 1, "m"), ("syndiotactic", 9, "r")]


@pytest.mark.parametrize("tacticity, seed, dyad", STEREO_CASES)
def test_salted_pan_layer_keeps_its_tacticity_through_the_relaxation(monkeypatch, tacticity, seed, dyad):
    import aseimd.build.polymer as polymer
    from aseimd.build.polymer import dyads, tacticity_signs

    monkeypatch.setattr(polymer, "GROWTH_DENSITY_FALLBACKS", (0.25,))
    spec, cell = _salted_pan(tacticity, seed)
    assert cell.provenance["growth"]["growth_density_fraction"] == 0.25
    assert cell.provenance["salt"]["ion_pairs"] >= 1
    chains = _stereo_read_back(spec, cell)
    want = tacticity_signs(tacticity, len(chains[0]), None)
    for signs in chains:
        assert dyads(signs) == dyad * (len(signs) - 1)
        assert np.array_equal(signs, want)
    # build.json's record is measured on the same final coordinates
    assert cell.provenance["stereo_measured"] == [s.tolist() for s in chains]
    assert cell.provenance["polymer"]["tacticity_sequences"] == [dyad * (len(want) - 1)] * len(chains)


def test_without_the_chirality_restraint_the_same_salted_layers_lose_stereo(monkeypatch):
    """Control: the cases above do invert stereocentres when the restraint is left out."""
    import aseimd.build.polymer as polymer
    import aseimd.build.relax as rx
    from aseimd.build.polymer import tacticity_signs

    monkeypatch.setattr(polymer, "GROWTH_DENSITY_FALLBACKS", (0.25,))
    monkeypatch.setattr(rx, "_add_chirality", lambda system, stereocentres: None)
    flipped = 0
    for tacticity, seed, _ in STEREO_CASES:
        spec, cell = _salted_pan(tacticity, seed)
        chains = _stereo_read_back(spec, cell)
        want = tacticity_signs(tacticity, len(chains[0]), None)
        flipped += sum(int(np.sum(s != want)) for s in chains)
    assert flipped >= 1
