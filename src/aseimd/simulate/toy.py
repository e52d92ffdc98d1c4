"""A tiny model liquid as a built system directory, for tests, examples and benchmarks.

LJ atoms (``AR``; sigma 0.34 nm, epsilon 3.2 kJ/mol, 39.948 amu: a dense
liquid at 298 K and 1 bar, reduced temperature about 0.77) mixed with rigid-bond
water-like molecules (``WAT``: TIP3P charges and O Lennard-Jones, Jorgensen et
al., J. Chem. Phys. 79, 926 (1983); O-H constrained, H-O-H harmonic angle). PME
electrostatics. It has everything the runner must handle (charges, constraints,
hydrogens for HMR, molecules that cross the box) in a few hundred atoms, and
does not depend on the force-field library.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

_R_OH_NM = 0.09572
_ANGLE_HOH_RAD = 1.82421813


def toy_system(n_lj: int = 150, n_water: int = 20, box_nm: float = 2.3, cutoff_nm: float = 0.9,
               seed: int = 0) -> tuple[app.Topology, np.ndarray, mm.System]:
    """Topology, positions (nm, shape (n_atoms, 3)) and System of the toy liquid.

    Molecules sit on a shuffled cubic lattice (seeded), so the start is clash-free
    enough for a short minimisation.
    """
    rng = np.random.default_rng(seed)
    n_sites = n_lj + n_water
    per_edge = int(np.ceil(n_sites ** (1.0 / 3.0)))
    spacing = box_nm / per_edge
    grid = np.array(np.meshgrid(*[np.arange(per_edge)] * 3, indexing="ij")).reshape(3, -1).T
    sites = (grid[rng.permutation(len(grid))[:n_sites]] + 0.5) * spacing

    topology = app.Topology()
    topology.setPeriodicBoxVectors(np.eye(3) * box_nm * unit.nanometer)
    chain = topology.addChain()
    system = mm.System()
    system.setDefaultPeriodicBoxVectors(*(mm.Vec3(*row) for row in np.eye(3) * box_nm))
    nb = mm.NonbondedForce()
    nb.setNonbondedMethod(mm.NonbondedForce.PME)
    nb.setCutoffDistance(cutoff_nm)
    nb.setUseDispersionCorrection(True)
    angles = mm.HarmonicAngleForce()
    positions = []
    el_ar, el_o, el_h = (app.Element.getBySymbol(s) for s in ("Ar", "O", "H"))
    for i in range(n_lj):
        res = topology.addResidue("AR", chain)
        topology.addAtom("AR", el_ar, res)
        system.addParticle(39.948)
        nb.addParticle(0.0, 0.34, 3.2)
        positions.append(sites[i])
    half = _ANGLE_HOH_RAD / 2
    for j in range(n_water):
        centre = sites[n_lj + j]
        rot = _random_rotation(rng)
        local = np.array([[0, 0, 0], [np.sin(half), np.cos(half), 0], [-np.sin(half), np.cos(half), 0]]) * _R_OH_NM
        res = topology.addResidue("WAT", chain)
        o = topology.addAtom("O", el_o, res)
        h1 = topology.addAtom("H1", el_h, res)
        h2 = topology.addAtom("H2", el_h, res)
        topology.addBond(o, h1)
        topology.addBond(o, h2)
        io = system.addParticle(15.9994)
        ih1 = system.addParticle(1.008)
        ih2 = system.addParticle(1.008)
        nb.addParticle(-0.834, 0.315061, 0.636386)
        nb.addParticle(0.417, 0.1, 0.0)
        nb.addParticle(0.417, 0.1, 0.0)
        system.addConstraint(io, ih1, _R_OH_NM)
        system.addConstraint(io, ih2, _R_OH_NM)
        angles.addAngle(ih1, io, ih2, _ANGLE_HOH_RAD, 460.24)
        for a, b in ((io, ih1), (io, ih2), (ih1, ih2)):
            nb.addException(a, b, 0.0, 1.0, 0.0)
        positions.extend(centre + local @ rot.T)
    system.addForce(nb)
    system.addForce(angles)
    return topology, np.array(positions), system


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    a, b, c, d = q / np.linalg.norm(q)
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
    ])


def write_toy_system(out_dir: str | Path, **kwargs) -> Path:
    """Write the toy liquid as ``system.pdb``, ``system.xml``, ``build.json`` into ``out_dir``.

    Keyword arguments go to :func:`toy_system`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    topology, positions, system = toy_system(**kwargs)
    with open(out / "system.pdb", "w") as fh:
        app.PDBFile.writeFile(topology, positions * unit.nanometer, fh, keepIds=False)
    (out / "system.xml").write_text(mm.XmlSerializer.serialize(system))
    box = np.diag(topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)).tolist()
    (out / "build.json").write_text(json.dumps({
        "kind": "toy-liquid", "parameters": kwargs, "box_nm": box,
        "counts": {"AR": kwargs.get("n_lj", 150), "WAT": kwargs.get("n_water", 20)},
    }, indent=2))
    return out
