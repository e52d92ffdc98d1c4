"""The solvent-cn mode on a hand-built PAN-like nitrile / carbonate / Li+ configuration."""

from __future__ import annotations

import numpy as np
import pytest

from aseimd.analysis.solvent_cn import NC_PAIR, CC_PAIR, detect_roles, solvent_cn
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

BOX = 4.0
X, Y, Z = np.eye(3)
CUTOFFS = {"N_nitrile": 0.25, "O_carbonyl": 0.25, "O_ether": 0.25, "anion": 0.25, NC_PAIR: 0.36, CC_PAIR: 0.36}


class Builder:
    """Atoms, residues and bonds of an mdtraj topology, with positions in nm."""

    def __init__(self):
        import mdtraj

        self.md = mdtraj
        self.top = mdtraj.Topology()
        self.chain = self.top.add_chain()
        self.xyz = []

    def residue(self, name, atoms, bonds=()):
        res = self.top.add_residue(name, self.chain)
        made = {}
        for atom_name, symbol, pos in atoms:
            made[atom_name] = self.top.add_atom(atom_name, self.md.element.get_by_symbol(symbol), res)
            self.xyz.append(np.asarray(pos, float))
        for a, b in bonds:
            self.top.add_bond(made[a], made[b])
        return {k: v.index for k, v in made.items()}

    def nitrile(self, n_pos, direction=X):
        """CA-CB#N with N at n_pos, the chain running along -direction."""
        n_pos = np.asarray(n_pos, float)
        return self.residue("PAN", [("CA", "C", n_pos - 0.265 * direction), ("CB", "C", n_pos - 0.115 * direction),
                                    ("NC", "N", n_pos)], [("CA", "CB"), ("CB", "NC")])

    def carbonate(self, c1, u):
        """EC-like ring atoms: carbonyl C1=O1 along u, ester O2/O3, C2-C3 behind."""
        c1, u = np.asarray(c1, float), np.asarray(u, float)
        v = np.cross(u, Z if abs(u[2]) < 0.9 else X)
        v /= np.linalg.norm(v)
        atoms = [("C1", "C", c1), ("O1", "O", c1 + 0.12 * u), ("O2", "O", c1 - 0.1 * u + 0.08 * v),
                 ("O3", "O", c1 - 0.1 * u - 0.08 * v), ("C2", "C", c1 - 0.22 * u + 0.08 * v),
                 ("C3", "C", c1 - 0.22 * u - 0.08 * v)]
        return self.residue("EC", atoms, [("C1", "O1"), ("C1", "O2"), ("C1", "O3"), ("O2", "C2"),
                                          ("O3", "C3"), ("C2", "C3")])

    def write(self, tmp_path, n_frames=3, shift=(1.3, 0.7, 2.1)):
        base = np.array(self.xyz)
        xyz = np.array([base + f * np.asarray(shift) for f in range(n_frames)])
        xyz -= BOX * np.floor(xyz / BOX)  # wrapped, and the contacts move across the boundary
        traj = self.md.Trajectory(xyz.astype(np.float32), self.top,
                                  unitcell_lengths=np.full((n_frames, 3), BOX),
                                  unitcell_angles=np.full((n_frames, 3), 90.0))
        top_path, traj_path = tmp_path / "cell.pdb", tmp_path / "cell.dcd"
        traj[0].save_pdb(str(top_path))  # CONECT records carry the bonds
        traj.save_dcd(str(traj_path))
        return top_path, traj_path


def build_cell():
    b = Builder()
    expect = {k: [] for k in ("N_nitrile", "C_nitrile", "C_carbonyl", "O_carbonyl", "O_ether", "anion")}

    def nitrile(n_pos):
        ids = b.nitrile(n_pos)
        expect["N_nitrile"].append(ids["NC"])
        expect["C_nitrile"].append(ids["CB"])

    def carbonate(c1, u):
        ids = b.carbonate(c1, u)
        expect["C_carbonyl"].append(ids["C1"])
        expect["O_carbonyl"].append(ids["O1"])

    s = np.array([2.0, 2.0, 2.0])
    b.residue("LI", [("LI", "Li", s)])
    b.residue("LI", [("LI", "Li", [3.3, 1.0, 3.3])])  # a Li+ with an empty first shell
    n0, n1 = np.array([0.765, 0.5, 0.5]), np.array([0.765, 3.0, 0.5])
    nitrile(n0)
    nitrile(n1)
    nitrile(s - 0.2 * X)  # N on Li0
    nitrile([3.2, 0.5, 0.5])  # free
    carbonate(n0 + 0.33 * Y, Y)  # bound through N (0.33 nm) and C (0.349 nm)
    carbonate(n1 - 0.115 * X + np.array([-0.1, 0.33, 0.0]), Y)  # bound through the nitrile C only
    carbonate(s + 0.32 * X, -X)  # O1 on Li0
    carbonate(s + 0.33 * Z, -Z)  # O1 on Li0
    carbonate([3.3, 3.3, 3.3], X)  # free
    carbonate([0.6, 0.6, 3.0], X)  # free
    ids = b.residue("PEO", [("C1", "C", s - 0.21 * Y + [0.1, -0.08, 0]), ("O1", "O", s - 0.21 * Y),
                            ("C2", "C", s - 0.21 * Y + [-0.1, -0.08, 0])], [("C1", "O1"), ("O1", "C2")])
    expect["O_ether"].append(ids["O1"])
    p = s + 0.35 * Y
    fl = [("F1", p - 0.16 * Y), ("F2", p + 0.16 * Y), ("F3", p + 0.16 * X), ("F4", p - 0.16 * X),
          ("F5", p + 0.16 * Z), ("F6", p - 0.16 * Z)]
    ids = b.residue("PF6", [("P", "P", p)] + [(n, "F", q) for n, q in fl], [("P", n) for n, _ in fl])
    expect["anion"] += [ids[n] for n, _ in fl]
    return b, expect


def test_roles_are_detected_from_bonds(tmp_path):
    b, expect = build_cell()
    top, traj = b.write(tmp_path, n_frames=1)
    found = detect_roles(Trajectory(top, traj, dt_ps=1.0).topology)
    assert {k: sorted(v[1].tolist()) for k, v in found.items()} == {k: sorted(v) for k, v in expect.items()}


def test_bound_fraction_and_li_cns_on_a_hand_built_cell(tmp_path):
    b, _ = build_cell()
    top, traj = b.write(tmp_path)
    res = solvent_cn(Trajectory(top, traj, dt_ps=1.0), cutoffs_nm=CUTOFFS)
    s = res.solvent_cn
    assert s["carbonate_bound_fraction"] == pytest.approx(2 / 6)
    assert s["carbonate_free_fraction"] == pytest.approx(4 / 6)
    assert s["bound_fraction_via_N"] == pytest.approx(1 / 6)
    assert s["bound_fraction_via_C"] == pytest.approx(2 / 6)
    assert s["nitrile_carbonyl_cn"] == pytest.approx(1 / 4)
    assert (s["n_carbonate_molecules"], s["n_nitrile_groups"]) == (6, 4)
    li = {k: res.pairs[k] for k in ("N_nitrile", "O_carbonyl", "O_ether", "anion")}
    assert {k: p.cn for k, p in li.items()} == pytest.approx(
        {"N_nitrile": 0.5, "O_carbonyl": 1.0, "O_ether": 0.5, "anion": 0.5})
    assert li["anion"].cn_molecules == pytest.approx(0.5)
    assert all(p.center == "Li" for p in li.values())
    sp = res.speciation
    assert (sp["SSIP"], sp["CIP"], sp["AGG"]) == pytest.approx((0.5, 0.5, 0.0))
    dist = {d["composition"]: d["fraction"] for d in res.compositions["distribution"]}
    assert dist == pytest.approx({"Li(N_nitrile)1(O_carbonyl)2(O_ether)1(anion)1": 0.5,
                                  "Li(N_nitrile)0(O_carbonyl)0(O_ether)0(anion)0": 0.5})


def test_user_selections_override_detection(tmp_path):
    b, _ = build_cell()
    top, traj = b.write(tmp_path, n_frames=2)
    # only the nitrile N counts: the carbonate bound through the nitrile C alone becomes free
    res = solvent_cn(Trajectory(top, traj, dt_ps=1.0), groups={"N_nitrile": "resname PAN and name NC"},
                     cutoffs_nm={NC_PAIR: 0.36, CC_PAIR: 0.2, "N_nitrile": 0.25, "O_carbonyl": 0.25,
                                 "O_ether": 0.25, "anion": 0.25})
    assert res.solvent_cn["carbonate_bound_fraction"] == pytest.approx(1 / 6)
    assert res.groups["N_nitrile"].selection == "resname PAN and name NC"


def test_missing_nitrile_and_unknown_role_are_errors(tmp_path):
    b = Builder()
    b.residue("LI", [("LI", "Li", [1, 1, 1])])
    b.carbonate([2.0, 2.0, 2.0], X)
    top, traj = b.write(tmp_path, n_frames=1)
    t = Trajectory(top, traj, dt_ps=1.0)
    with pytest.raises(AnalysisError, match="no N_nitrile atoms"):
        solvent_cn(t)
    with pytest.raises(AnalysisError, match="unknown solvent-cn group 'nitrile'"):
        solvent_cn(t, groups={"nitrile": "name NC"})
    with pytest.raises(AnalysisError, match="unknown pair 'Li-EC'"):
        solvent_cn(t, groups={"N_nitrile": "name C2"}, cutoffs_nm={"Li-EC": 0.3})
