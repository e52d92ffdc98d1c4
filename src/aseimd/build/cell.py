"""The built system: a :class:`Cell`, and the system directory it is written to.

A system directory holds

``system.pdb``
    Topology and positions; residue and atom names as in ``aseimd species`` and
    the force-field templates; CRYST1 carries the box.
``system.xml``
    The ``openmm.System`` (``XmlSerializer``) from
    :func:`aseimd.forcefield.create_system`.
``build.json``
    The cell's provenance (recipe, counts, requested vs achieved concentrations,
    packing, seed) plus box, atom count, net charge, charge scale, the options
    given to ``create_system``, force-field files with sha256 and the OpenMM
    version, the aseimd version, the date, and the sha256 of the two files above.

It is written through :func:`aseimd.fileio.staged_directory`: a failure leaves
nothing behind and an existing directory is only replaced with ``force=True``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import openmm
from openmm import app, unit

from aseimd.errors import SpecError
from aseimd.fileio import check_output_dir, dumps_json, staged_directory

#: The files of a system directory.
SYSTEM_FILES = ("system.pdb", "system.xml", "build.json")
#: Kind named in a system directory's ``.aseimd`` marker (see :mod:`aseimd.fileio`).
SYSTEM_DIR_KIND = "system"


def check_system_output(out_dir: str | os.PathLike, force: bool = False) -> Path:
    """Check ``out_dir`` as a new system directory before any work (see :func:`aseimd.fileio.check_output_dir`).

    ``force`` replaces only a system directory aseimd wrote that holds nothing else.
    """
    return check_output_dir(out_dir, kind=SYSTEM_DIR_KIND, files=SYSTEM_FILES, force=force,
                            legacy_json="build.json")


@dataclass
class Cell:
    """A periodic, orthorhombic simulation cell ready for parametrisation.

    Attributes
    ----------
    topology : openmm.app.Topology
        Residues named as in the species table; its periodic box vectors are set
        from ``box_nm`` on construction.
    positions_nm : numpy.ndarray, shape=(n_atoms, 3), dtype=float
        Positions in nm.
    box_nm : numpy.ndarray, shape=(3,), dtype=float
        Orthorhombic edge lengths in nm.
    provenance : dict
        How the cell was made (JSON-ready); copied into ``build.json``.
    """

    topology: app.Topology
    positions_nm: np.ndarray
    box_nm: np.ndarray
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.positions_nm = np.asarray(self.positions_nm, dtype=float)
        self.box_nm = np.asarray(self.box_nm, dtype=float)
        n = self.topology.getNumAtoms()
        if self.positions_nm.shape != (n, 3):
            raise ValueError(f"positions_nm has shape {self.positions_nm.shape}, topology has {n} atoms")
        if self.box_nm.shape != (3,) or np.any(~np.isfinite(self.box_nm)) or np.any(self.box_nm <= 0):
            raise ValueError(f"box_nm must be three positive lengths, got {self.box_nm}")
        self.topology.setPeriodicBoxVectors(_box_vectors(self.box_nm))

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return self.topology.getNumAtoms()


def _box_vectors(box_nm: np.ndarray):
    a, b, c = (float(x) for x in box_nm)
    return (openmm.Vec3(a, 0, 0), openmm.Vec3(0, b, 0), openmm.Vec3(0, 0, c)) * unit.nanometer


def append_copies(top: app.Topology, template: app.Topology, count: int) -> None:
    """Append ``count`` copies of ``template`` (residues, atoms, bonds) to ``top`` as one new chain, in place.

    Nothing is added for ``count <= 0``.
    """
    if count <= 0:
        return
    chain = top.addChain()
    index = {a.index: i for i, a in enumerate(template.atoms())}
    bonds = [(index[b.atom1.index], index[b.atom2.index], b.type, b.order) for b in template.bonds()]
    for _ in range(count):
        new_atoms = []
        for res in template.residues():
            new_res = top.addResidue(res.name, chain)
            for atom in res.atoms():
                new_atoms.append(top.addAtom(atom.name, atom.element, new_res))
        for i, j, btype, order in bonds:
            top.addBond(new_atoms[i], new_atoms[j], btype, order)


def topology_from_molecules(pieces: Sequence[tuple[object, int]]) -> app.Topology:
    """Concatenate copies of single-molecule topologies into one topology.

    Parameters
    ----------
    pieces : sequence of (Molecule, int)
        Each a molecule (anything with a ``topology`` attribute holding an
        ``openmm.app.Topology``) and its number of copies. Each piece becomes
        one chain; every copy keeps the template's residue names, atom names,
        elements and bonds.

    Returns
    -------
    openmm.app.Topology
        Without a periodic box (a :class:`Cell` sets it).
    """
    top = app.Topology()
    for mol, count in pieces:
        append_copies(top, mol.topology, count)
    return top


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _nonbonded(system: openmm.System) -> openmm.NonbondedForce | None:
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            return force
    return None


def system_charge_e(system: openmm.System) -> float:
    """Sum of the NonbondedForce charges of a System, in e (0.0 without one)."""
    nb = _nonbonded(system)
    if nb is None:
        return 0.0
    return float(sum(nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                     for i in range(nb.getNumParticles())))


def _check_cutoff(cutoff_nm, box_nm: np.ndarray) -> None:
    """A cutoff must be positive and at most half the shortest box edge (minimum image)."""
    if cutoff_nm is None:
        return
    half = float(np.min(box_nm)) / 2.0
    if not (isinstance(cutoff_nm, (int, float)) and 0 < cutoff_nm <= half):
        edges = " x ".join(f"{float(x):.3f}" for x in box_nm)
        raise SpecError(f"cutoff_nm {cutoff_nm!r} not allowed for a {edges} nm box; allowed: "
                        f"0 < cutoff_nm <= {half:.3f} (half the shortest edge)")


def write_system_dir(cell: Cell, out_dir: str | os.PathLike, *, charge_scale: float = 0.8,
                     force: bool = False, **system_options) -> Path:
    """Parametrise a cell and write ``system.pdb``, ``system.xml`` and ``build.json`` atomically.

    Parameters
    ----------
    cell : Cell
    out_dir : path-like
        The system directory to create.
    charge_scale : float
        Ion charge scale passed to :func:`aseimd.forcefield.create_system`.
    force : bool
        Replace an existing ``out_dir`` (only once the new one is complete).
    **system_options
        Passed on to :func:`aseimd.forcefield.create_system` (``cutoff_nm``,
        ``constraints``, ...) and recorded in ``build.json``.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    OutputExistsError
        If ``out_dir`` exists and ``force`` is false, or ``force`` is given but
        ``out_dir`` is not a system directory aseimd wrote holding only its own
        files (checked before any work, and again before the swap).
    ForceFieldError
        From ``create_system`` (missing template, cutoff longer than half the box, ...).
    """
    from aseimd import __version__
    from aseimd.forcefield import create_system, forcefield_provenance

    out_dir = check_system_output(out_dir, force=force)
    _check_cutoff(system_options.get("cutoff_nm"), cell.box_nm)
    system = create_system(cell.topology, charge_scale=charge_scale, **system_options)
    nb = _nonbonded(system)
    cutoff_nm = None
    if nb is not None and nb.usesPeriodicBoundaryConditions():
        cutoff_nm = nb.getCutoffDistance().value_in_unit(unit.nanometer)
    xml = openmm.XmlSerializer.serialize(system)
    net_charge = system_charge_e(system)
    with staged_directory(out_dir, force=force, kind=SYSTEM_DIR_KIND, files=SYSTEM_FILES,
                          legacy_json="build.json") as tmp:
        with open(tmp / "system.pdb", "w") as fh:
            app.PDBFile.writeFile(cell.topology, cell.positions_nm * unit.nanometer, fh)
        (tmp / "system.xml").write_text(xml)
        build = {
            "aseimd_version": __version__,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **cell.provenance,
            "box_nm": [float(x) for x in cell.box_nm],
            "n_atoms": cell.n_atoms,
            "n_residues": cell.topology.getNumResidues(),
            "net_charge_e": net_charge,
            "charge_scale": charge_scale,
            "system_options": dict(system_options),
            "cutoff_nm": cutoff_nm,
            "forcefield": forcefield_provenance(),
            "files": {name: _sha256(tmp / name) for name in ("system.pdb", "system.xml")},
        }
        (tmp / "build.json").write_text(dumps_json(build))
    return out_dir


class SystemDir(NamedTuple):
    """What :func:`read_system_dir` returns (unpacks as ``pdb, system, build``)."""

    pdb: app.PDBFile
    system: openmm.System
    build: dict


def read_system_dir(path: str | os.PathLike) -> SystemDir:
    """Read a system directory written by :func:`write_system_dir`.

    When ``build.json`` records the sha256 of ``system.pdb`` and ``system.xml``
    (aseimd always writes them), the files are checked against it first, so a
    truncated or edited file is reported as such instead of being half-read.

    Returns
    -------
    SystemDir
        ``pdb`` (``openmm.app.PDBFile``: ``.topology`` with box, ``.positions``),
        ``system`` (``openmm.System``) and ``build`` (the build.json dict).

    Raises
    ------
    SpecError
        If ``path`` is not a directory holding the three files, or one of them
        is damaged (digest mismatch, truncated, not parseable).
    """
    path = Path(path)
    missing = [name for name in SYSTEM_FILES if not (path / name).is_file()]
    if missing:
        raise SpecError(f"{str(path)!r} is not a system directory: missing {', '.join(missing)} "
                        f"(expected {', '.join(SYSTEM_FILES)}; make one with 'aseimd build')")
    damaged = "; rebuild it with 'aseimd build' (or restore the file)"
    try:
        build = json.loads((path / "build.json").read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"build.json in {str(path)!r} is not valid JSON ({exc.__class__.__name__}: "
                        f"{' '.join(str(exc).split())}){damaged}") from None
    if not isinstance(build, dict):
        raise SpecError(f"build.json in {str(path)!r} is not a JSON object{damaged}")
    recorded = build.get("files") if isinstance(build.get("files"), dict) else {}
    for name in ("system.pdb", "system.xml"):
        want = recorded.get(name)
        if want is not None and _sha256(path / name) != want:
            size = (path / name).stat().st_size
            raise SpecError(f"{name} in {str(path)!r} ({size} bytes) does not match the sha256 recorded in "
                            f"build.json: it was changed or damaged after the build{damaged}")
    try:
        pdb = app.PDBFile(str(path / "system.pdb"))
    except Exception as exc:  # OpenMM's PDB reader raises plain exceptions on garbage
        raise SpecError(f"system.pdb in {str(path)!r} cannot be read ({' '.join(str(exc).split())[:200]})"
                        f"{damaged}") from None
    if pdb.topology.getNumAtoms() == 0:
        raise SpecError(f"system.pdb in {str(path)!r} holds no atoms{damaged}")
    try:
        system = openmm.XmlSerializer.deserialize((path / "system.xml").read_text())
    except Exception as exc:  # truncated XML: "Unknown property 'mass'" and the like
        raise SpecError(f"system.xml in {str(path)!r} cannot be read: truncated or not a serialized OpenMM "
                        f"System ({' '.join(str(exc).split())[:200]}){damaged}") from None
    return SystemDir(pdb, system, build)
