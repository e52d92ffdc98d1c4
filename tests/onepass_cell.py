"""A small synthetic electrolyte-like trajectory for the one-pass tests (deterministic).

Li+ ions walk (Brownian); 2 EC molecules per Li+ hold their carbonyl O at 0.21 nm from it, trading partners
every 40 frames (finite residence); a few PF6- sit at 0.33 nm from a Li+ (ion pairs), the rest walk freely;
PAN-like nitriles (CA-CB#N) walk with an EC carbonyl C at 0.30 nm from some N. Wrapped positions, bonds in the
PDB (CONECT) so that the solvent-cn roles are detected, 1 ps between frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BOX_NM = 3.0
N_LI, N_EC_BOUND, N_EC_FREE, N_PF6, N_PF6_PAIRED, N_PAN = 12, 24, 16, 12, 4, 6
N_FRAMES = 240
DT_PS = 1.0


def _unit(rng, n):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _ec(c1, u):
    v = np.cross(u, [0.0, 0.0, 1.0] if abs(u[2]) < 0.9 else [1.0, 0.0, 0.0])
    v /= np.linalg.norm(v)
    return [c1, c1 + 0.12 * u, c1 - 0.1 * u + 0.08 * v, c1 - 0.1 * u - 0.08 * v,
            c1 - 0.22 * u + 0.08 * v, c1 - 0.22 * u - 0.08 * v]


def make_cell(tmp_path, seed: int = 20261202, n_frames: int = N_FRAMES):
    """Write ``cell.pdb`` + ``cell.dcd`` (+ run.json) under ``tmp_path``; return the two paths."""
    import mdtraj as md

    rng = np.random.default_rng(seed)
    top = md.Topology()
    chain = top.add_chain()

    def residue(name, atoms, bonds=()):
        res = top.add_residue(name, chain)
        made = {a: top.add_atom(a, md.element.get_by_symbol(s), res) for a, s in atoms}
        for a, b in bonds:
            top.add_bond(made[a], made[b])

    for _ in range(N_LI):
        residue("LI", [("LI", "Li")])
    for _ in range(N_PF6):
        residue("PF6", [("P", "P")] + [(f"F{k}", "F") for k in range(1, 7)],
                [("P", f"F{k}") for k in range(1, 7)])
    ec_atoms = [("C1", "C"), ("O1", "O"), ("O2", "O"), ("O3", "O"), ("C2", "C"), ("C3", "C")]
    ec_bonds = [("C1", "O1"), ("C1", "O2"), ("C1", "O3"), ("O2", "C2"), ("O3", "C3"), ("C2", "C3")]
    for _ in range(N_EC_BOUND + N_EC_FREE):
        residue("EC", ec_atoms, ec_bonds)
    for _ in range(N_PAN):
        residue("PAN", [("CA", "C"), ("CB", "C"), ("NC", "N")], [("CA", "CB"), ("CB", "NC")])

    octa = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float) * 0.16
    li = rng.uniform(0, BOX_NM, (N_LI, 3)) + np.cumsum(rng.normal(0, 0.02, (n_frames, N_LI, 3)), axis=0)
    pf6 = rng.uniform(0, BOX_NM, (N_PF6, 3)) + np.cumsum(rng.normal(0, 0.03, (n_frames, N_PF6, 3)), axis=0)
    ec_free = rng.uniform(0, BOX_NM, (N_EC_FREE, 3)) + np.cumsum(rng.normal(0, 0.03, (n_frames, N_EC_FREE, 3)),
                                                                 axis=0)
    pan = rng.uniform(0, BOX_NM, (N_PAN, 3)) + np.cumsum(rng.normal(0, 0.01, (n_frames, N_PAN, 3)), axis=0)
    frames = []
    for f in range(n_frames):
        xyz = [li[f]]
        p = pf6[f].copy()
        p[:N_PF6_PAIRED] = li[f, :N_PF6_PAIRED] + 0.33 * _unit(rng, N_PF6_PAIRED)
        xyz.append((p[:, None, :] + np.vstack([np.zeros(3), octa])[None]).reshape(-1, 3))
        shift = f // 40  # partners traded every 40 frames
        u = _unit(rng, N_EC_BOUND)
        for k in range(N_EC_BOUND):
            c1 = li[f, (k // 2 + shift) % N_LI] + 0.33 * u[k]  # O1 at 0.21 nm from the Li+, C1 behind it
            xyz.append(np.array(_ec(c1, -u[k])))
        for k in range(N_EC_FREE):
            c1 = ec_free[f, k]
            if k < N_PAN // 2:  # a carbonyl C at 0.30 nm from a nitrile N
                c1 = pan[f, k] + 0.30 * _unit(rng, 1)[0]
            xyz.append(np.array(_ec(c1, _unit(rng, 1)[0])))
        d = np.array([1.0, 0.0, 0.0])
        for k in range(N_PAN):
            n = pan[f, k]
            xyz.append(np.array([n - 0.265 * d, n - 0.115 * d, n]))
        frames.append(np.concatenate([np.atleast_2d(x) for x in xyz]))
    xyz = np.array(frames)
    xyz -= BOX_NM * np.floor(xyz / BOX_NM)
    t = md.Trajectory(xyz.astype(np.float32), top, unitcell_lengths=np.full((n_frames, 3), BOX_NM),
                      unitcell_angles=np.full((n_frames, 3), 90.0))
    tmp_path = Path(tmp_path)
    top_path, traj_path = tmp_path / "cell.pdb", tmp_path / "cell.dcd"
    t[0].save_pdb(str(top_path))
    t.save_dcd(str(traj_path))
    (tmp_path / "run.json").write_text(json.dumps(
        {"trajectory": {"file": traj_path.name, "dt_ps": DT_PS, "n_frames": n_frames, "stage": "synthetic"}}))
    return top_path, traj_path
