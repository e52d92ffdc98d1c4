"""Synthetic trajectories with known motion, for analysis tests.

Import from tests (``from synthetic import ...``; ``tests/`` is on ``sys.path``
under pytest's default rootdir-based import mode, see conftest).

- :func:`write_trajectory` writes a topology (PDB, with CRYST1 when a box is
  given) and a trajectory (DCD, XTC, TRR, NetCDF, HDF5 by ``fmt``) for given
  positions, and a ``run.json`` beside a DCD so the frame spacing is known.
- :func:`brownian`, :func:`ballistic`, :func:`correlated_pairs` make
  positions with closed-form MSDs and Onsager coefficients.
- :func:`wrap` folds positions into the box (what a wrapping writer does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: A residue spec: (residue name, [(atom name, element symbol), ...]) or with a chain index as a third item.
ResidueSpec = tuple


def ions(n: int, resname: str, atom: str | None = None, element: str | None = None, chain: int = 0) -> list:
    """``n`` single-atom residues, e.g. ``ions(10, "LI", "LI", "Li")``."""
    atom = atom or resname
    element = element or atom.capitalize()
    return [(resname, [(atom, element)], chain) for _ in range(n)]


def molecules(n: int, resname: str, atoms: Sequence[tuple[str, str]], chain: int = 0) -> list:
    """``n`` copies of a multi-atom residue."""
    return [(resname, list(atoms), chain) for _ in range(n)]


def build_topology(residues: Sequence[ResidueSpec]):
    """An mdtraj Topology from residue specs (chains by the optional third item)."""
    import mdtraj as md

    top = md.Topology()
    chains: dict[int, object] = {}
    for spec in residues:
        resname, atoms = spec[0], spec[1]
        chain_id = spec[2] if len(spec) > 2 else 0
        if chain_id not in chains:
            chains[chain_id] = top.add_chain()
        res = top.add_residue(resname, chains[chain_id])
        for name, symbol in atoms:
            top.add_atom(name, md.element.get_by_symbol(symbol), res)
    return top


def write_trajectory(
    tmp_path: str | Path,
    positions_nm: np.ndarray,
    box_nm: np.ndarray | Sequence[float] | None,
    residues: Sequence[ResidueSpec],
    *,
    fmt: str = "dcd",
    dt_ps: float | None = 1.0,
    name: str = "synthetic",
    run_json: bool = True,
) -> tuple[Path, Path]:
    """Write ``name.pdb`` and ``name.<fmt>`` for the given positions.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_frames, n_atoms, 3)
        In nm, atoms in the order of ``residues``.
    box_nm : array-like, shape=(3,) or (n_frames, 3), or None
        Orthorhombic box edges in nm (None: no unit cell).
    residues : list of residue specs
        ``(resname, [(atom, element), ...][, chain])``; see :func:`ions`, :func:`molecules`.
    fmt : {"dcd", "xtc", "trr", "nc", "h5"}
    dt_ps : float or None
        Frame spacing: the time axis of formats that carry one, and ``run.json``
        beside a DCD (``run_json=True``) in the format ``aseimd run`` writes.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        Topology and trajectory paths.
    """
    import mdtraj as md

    tmp_path = Path(tmp_path)
    xyz = np.asarray(positions_nm, dtype=np.float32)
    top = build_topology(residues)
    if xyz.ndim != 3 or xyz.shape[1] != top.n_atoms:
        raise ValueError(f"positions {xyz.shape} do not match {top.n_atoms} atoms of the residue spec")
    n_frames = xyz.shape[0]
    lengths = angles = None
    if box_nm is not None:
        lengths = np.broadcast_to(np.asarray(box_nm, dtype=np.float32), (n_frames, 3)).copy()
        angles = np.full((n_frames, 3), 90.0, dtype=np.float32)
    time = np.arange(n_frames) * (dt_ps if dt_ps else 1.0)
    traj = md.Trajectory(xyz, top, time=time, unitcell_lengths=lengths, unitcell_angles=angles)
    top_path = tmp_path / f"{name}.pdb"
    traj_path = tmp_path / f"{name}.{fmt}"
    traj[0].save_pdb(str(top_path))
    traj.save(str(traj_path))
    if fmt == "dcd" and dt_ps and run_json:
        (tmp_path / "run.json").write_text(json.dumps(
            {"trajectory": {"file": traj_path.name, "dt_ps": dt_ps, "n_frames": n_frames, "stage": "synthetic"}}
        ))
    return top_path, traj_path


def wrap(positions_nm: np.ndarray, box_nm: Sequence[float]) -> np.ndarray:
    """Fold positions into [0, L) per component (orthorhombic box)."""
    box = np.asarray(box_nm, dtype=float)
    return positions_nm - box * np.floor(positions_nm / box)


def brownian(
    rng: np.random.Generator,
    n_frames: int,
    n_particles: int,
    dt_ps: float,
    D_nm2_per_ps: float | Sequence[float],
    box_nm: Sequence[float] = (3.0, 3.0, 3.0),
) -> np.ndarray:
    """Independent Brownian particles, unwrapped, starting uniformly in the box.

    Each step is Gaussian with variance 2 D_k dt per component k, so
    MSD_k(t) = 2 D_k t exactly in expectation.

    Returns
    -------
    numpy.ndarray, shape=(n_frames, n_particles, 3), in nm
    """
    D = np.broadcast_to(np.asarray(D_nm2_per_ps, dtype=float), (3,))
    start = rng.uniform(0.0, 1.0, (n_particles, 3)) * np.asarray(box_nm, float)
    steps = rng.normal(size=(n_frames - 1, n_particles, 3)) * np.sqrt(2.0 * D * dt_ps)
    return np.concatenate([start[None], start + np.cumsum(steps, axis=0)])


def ballistic(n_frames: int, velocities_nm_per_ps: np.ndarray, dt_ps: float, start_nm: np.ndarray) -> np.ndarray:
    """Straight-line motion r(t) = r0 + v t: MSD(t) = <|v|²> t² exactly.

    Returns
    -------
    numpy.ndarray, shape=(n_frames, n_particles, 3), in nm
    """
    t = np.arange(n_frames)[:, None, None] * dt_ps
    return np.asarray(start_nm, float)[None] + t * np.asarray(velocities_nm_per_ps, float)[None]


def correlated_pairs(
    rng: np.random.Generator,
    n_pairs: int,
    n_frames: int,
    dt_ps: float,
    D_shared: float,
    D_cation: float,
    D_anion: float,
    box_nm: Sequence[float] = (4.0, 4.0, 4.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Cation-anion pairs that share a Brownian component.

    Cation i moves as s_i + a_i, anion i as s_i + b_i, with independent
    Brownian s_i, a_i, b_i of diffusion coefficients D_shared, D_cation,
    D_anion (nm²/ps). Closed forms (per direction, N = n_pairs, lab frame):
    D+ = D_shared + D_cation, D- = D_shared + D_anion;
    <ΔX+ ΔX+> = 2 N D+ t, <ΔX- ΔX-> = 2 N D- t, <ΔX+ ΔX-> = 2 N D_shared t
    (X = sum of the positions of one species), so for charges ±1
    t+(Onsager) = D_cation / (D_cation + D_anion) and
    t_NE = D+ / (D+ + D-).

    Returns
    -------
    cations, anions : numpy.ndarray, shape=(n_frames, n_pairs, 3), in nm
    """
    shared = brownian(rng, n_frames, n_pairs, dt_ps, D_shared, box_nm)
    a = brownian(rng, n_frames, n_pairs, dt_ps, D_cation, box_nm) if D_cation > 0 else np.zeros_like(shared)
    b = brownian(rng, n_frames, n_pairs, dt_ps, D_anion, box_nm) if D_anion > 0 else np.zeros_like(shared)
    a -= a[0]
    b -= b[0]
    offset = rng.normal(scale=0.15, size=(n_pairs, 3))  # a contact-pair separation
    return shared + a, shared + b + offset


def pair_walks(
    rng: np.random.Generator,
    n_pairs: int,
    n_frames: int,
    D_shared: float,
    D_cation: float,
    D_anion: float,
    *,
    dt_ps: float = 1.0,
    ou_rms_nm: float = 0.0,
    ou_tau_frames: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cation-anion pairs with correlated Brownian steps, generated in one array operation.

    Cation i moves by s_i + a_i, anion i by s_i + b_i per frame (independent
    Gaussian steps of variances 2 D dt per direction), the same model as
    :func:`correlated_pairs`, without random starts. With ``ou_rms_nm > 0``
    every ion also carries its own stationary Ornstein-Uhlenbeck displacement
    (rms ``ou_rms_nm`` per direction, relaxation time ``ou_tau_frames``): a
    short-time memory that adds 2 ou_rms² (1 - exp(-m / tau)) per direction to
    the MSD and leaves every long-time coefficient (:func:`pair_truth`) unchanged.

    Returns
    -------
    cations, anions : numpy.ndarray, shape=(n_frames, n_pairs, 3), dtype=float64, in nm
    """
    scale = np.sqrt(2.0 * np.array([D_shared, D_cation, D_anion]) * dt_ps)[:, None, None, None]
    steps = rng.standard_normal((3, n_frames - 1, n_pairs, 3)) * scale
    walks = np.concatenate([np.zeros((3, 1, n_pairs, 3)), np.cumsum(steps, axis=1)], axis=1)
    cat, an = walks[0] + walks[1], walks[0] + walks[2]
    if ou_rms_nm > 0:
        from scipy.signal import lfilter

        phi = np.exp(-1.0 / ou_tau_frames)
        noise = rng.standard_normal((2, n_frames, n_pairs, 3)) * ou_rms_nm
        noise[:, 0] /= np.sqrt(1.0 - phi**2)  # stationary start
        ou = lfilter([np.sqrt(1.0 - phi**2)], [1.0, -phi], noise, axis=1)
        cat, an = cat + ou[0], an + ou[1]
    return cat, an


def pair_truth(n_pairs: int, D_shared: float, D_cation: float, D_anion: float, volume_nm3: float,
               temperature_K: float) -> dict[str, float]:
    """Closed-form transport of :func:`pair_walks` (lab frame, charges ±1, D in nm²/ps).

    <ΔX+ ΔX+> = 2 d N (Ds + Da) t, <ΔX- ΔX-> = 2 d N (Ds + Db) t,
    <ΔX+ ΔX-> = 2 d N Ds t, so L_ij = slope / (2 d V kB T),
    t+ = Da / (Da + Db), sigma_EH = e² N (Da + Db) / (V kB T),
    sigma_NE = e² N (2 Ds + Da + Db) / (V kB T).

    Returns
    -------
    dict
        ``D_plus``, ``D_minus`` (m²/s), ``L_pp``, ``L_mm``, ``L_pm`` (1/(J m s)),
        ``t_plus_onsager``, ``t_plus_ne``, ``sigma_eh``, ``sigma_ne`` (S/m).
    """
    e, kT = 1.602176634e-19, 1.380649e-23 * temperature_K
    to_L = 1e-6 / (volume_nm3 * 1e-27 * kT)
    Dp, Dm = D_shared + D_cation, D_shared + D_anion
    return {
        "D_plus": Dp * 1e-6, "D_minus": Dm * 1e-6,
        "L_pp": n_pairs * Dp * to_L, "L_mm": n_pairs * Dm * to_L, "L_pm": n_pairs * D_shared * to_L,
        "t_plus_onsager": D_cation / (D_cation + D_anion), "t_plus_ne": Dp / (Dp + Dm),
        "sigma_eh": e**2 * n_pairs * (D_cation + D_anion) * to_L,
        "sigma_ne": e**2 * n_pairs * (Dp + Dm) * to_L,
    }
