"""What analysis needs of a topology, as arrays: atom names, residues, chains, elements, masses.

:class:`AtomTable` is the topology as the transport analyses use it (group
selection, residue centres of mass, masses for the centre of mass, formal
charges by residue name). It comes either from an mdtraj topology
(:meth:`AtomTable.from_mdtraj`: any format mdtraj reads) or, for the common
PDB written by ``aseimd build`` (OpenMM's PDB writer) or by mdtraj, straight
from the file (:func:`read_pdb_table`) without importing mdtraj, which costs
0.2–0.4 s of a ~1 s ``aseimd analyze diffusion``.

The PDB reader accepts only files whose reading by mdtraj it reproduces
exactly, and returns ``None`` for anything else, so that the caller falls back
to ``mdtraj.load_topology``. It reproduces mdtraj 1.11's PDB topology
(``PdbStructure`` + ``PDBTrajectoryFile._read_models``, ``standard_names=True``):
a new chain at a change of chain id or after a TER record; a new residue at a
change of residue number, insertion code or name; atom names stripped; the
element from columns 77–78. It declines (returns ``None``) on: alternate
locations; more than one model; a missing or unknown element symbol (mdtraj
would guess it from the atom name); non-decimal or overflowing atom or residue
numbers (hybrid-36, hex, ``****``; numbers >= 99999 / 9999, where mdtraj
switches to its overflow modes); 4-character residue names; any residue name
that mdtraj renames (the residue table ``pdbNames.xml`` of its PDB reader, e.g.
WAT -> HOH with atom renames), read from mdtraj's installed data file; lines it
cannot parse. ``tests/test_atom_table.py`` compares every field with mdtraj's
topology on aseimd-built and synthetic PDBs.

Masses are mdtraj's element masses (``ELEMENT_MASSES``), so that a group's
mass and the system centre of mass are bit for bit what they are with the
mdtraj topology.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Element symbol -> atomic mass (Da) for the elements the light PDB reader accepts. The values are those
#: of mdtraj 1.11's element table (``mdtraj.core.element``, itself OpenMM's), kept equal to the bit so that
#: masses do not depend on which reader parsed the topology (``tests/test_atom_table.py`` checks every
#: entry against mdtraj). An element not listed sends the file to mdtraj.
ELEMENT_MASSES = {
    "H": 1.007947, "D": 2.0135532127, "He": 4.003, "Li": 6.9412, "Be": 9.0121823, "B": 10.8117,
    "C": 12.01078, "N": 14.00672, "O": 15.99943, "F": 18.99840325, "Ne": 20.17976, "Na": 22.989769282,
    "Mg": 24.30506, "Al": 26.98153868, "Si": 28.08553, "P": 30.9737622, "S": 32.0655, "Cl": 35.4532,
    "Ar": 39.9481, "K": 39.09831, "Ca": 40.0784, "Zn": 65.4094, "Se": 78.963, "Br": 79.9041, "Kr": 83.7982,
    "Rb": 85.46783, "Sr": 87.621, "I": 126.904473, "Xe": 131.2936, "Cs": 132.90545192, "Ba": 137.3277,
}
_BY_UPPER = {s.upper(): s for s in ELEMENT_MASSES}


@dataclass(frozen=True)
class AtomTable:
    """Per-atom and per-residue arrays of a topology (atoms in topology order, residues likewise).

    Attributes
    ----------
    names : tuple of str
        Atom names.
    residue : numpy.ndarray, shape=(n_atoms,), dtype=int
        Residue index (0-based, topology order) of each atom.
    residue_names : tuple of str
        Name of each residue.
    residue_seq : numpy.ndarray, shape=(n_residues,), dtype=int
        Residue number as in the file (mdtraj's ``resSeq``).
    residue_chain : numpy.ndarray, shape=(n_residues,), dtype=int
        Chain index (0-based) of each residue.
    symbols : tuple of str
        Element symbol of each atom (``""`` when the element is unknown).
    masses : numpy.ndarray, shape=(n_atoms,), dtype=float64
        In Da; 0.0 when the element is unknown.
    """

    names: tuple[str, ...]
    residue: np.ndarray
    residue_names: tuple[str, ...]
    residue_seq: np.ndarray
    residue_chain: np.ndarray
    symbols: tuple[str, ...]
    masses: np.ndarray

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.names)

    @property
    def n_residues(self) -> int:
        """Number of residues."""
        return len(self.residue_names)

    @functools.cached_property
    def residue_n_atoms(self) -> np.ndarray:
        """Atoms per residue, shape=(n_residues,)."""
        return np.bincount(self.residue, minlength=self.n_residues)

    @classmethod
    def from_mdtraj(cls, topology) -> AtomTable:
        """The table of an mdtraj ``Topology``."""
        atoms = list(topology.atoms)
        residues = list(topology.residues)
        return cls(
            names=tuple(a.name for a in atoms),
            residue=np.array([a.residue.index for a in atoms], dtype=int),
            residue_names=tuple(r.name for r in residues),
            residue_seq=np.array([r.resSeq for r in residues], dtype=int),
            residue_chain=np.array([r.chain.index for r in residues], dtype=int),
            symbols=tuple(a.element.symbol if a.element is not None else "" for a in atoms),
            masses=np.array([a.element.mass if a.element is not None else 0.0 for a in atoms], dtype=float),
        )


@functools.lru_cache(maxsize=1)
def _renamed_residues() -> frozenset[str] | None:
    """Every residue name mdtraj's PDB reader renames or whose atoms it renames (its ``pdbNames.xml``).

    Read from mdtraj's installed data file without importing mdtraj; ``None`` if it cannot be found
    (then no PDB takes the light path).
    """
    spec = importlib.util.find_spec("mdtraj")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "formats" / "pdb" / "data" / "pdbNames.xml"
        if path.is_file():
            break
    else:
        return None
    names = set()
    for tag in re.findall(r"<Residue\b([^>]*)>", path.read_text()):
        for key, value in re.findall(r'(\w+)="([^"]*)"', tag):
            if key == "name" or key.startswith("alt"):
                names.add(value)
    return frozenset(names) if names else None


def read_pdb_table(path: str | os.PathLike) -> AtomTable | None:
    """The :class:`AtomTable` of a plain PDB file, or ``None`` where mdtraj must read it (see the module notes)."""
    renamed = _renamed_residues()
    if renamed is None:
        return None
    try:
        with open(path, encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    names, symbols, residue = [], [], []
    res_names, res_seq, res_chain = [], [], []
    n_chains = 0
    chain_id = None  # of the current chain
    ter = False      # a TER record closed the current chain
    last = None      # (number, insertion code, name) of the current residue
    ended = False
    for line in lines:
        record = line[:6]
        if record in ("ATOM  ", "HETATM"):
            if ended:
                return None  # atoms after END/ENDMDL: another model
            if len(line) < 78 or line[16] != " " or line[20] != " ":
                return None  # no element columns, an alternate location, or a 4-character residue name
            serial, number = line[6:11], line[22:26]
            if not (_plain_int(serial, 99999) and _plain_int(number, 9999)):
                return None
            symbol = _BY_UPPER.get(line[76:78].strip().upper())
            if symbol is None:
                return None
            try:
                float(line[30:38]), float(line[38:46]), float(line[46:54])
            except ValueError:
                return None
            res_name = line[17:20].strip()
            if res_name in renamed:
                return None
            cid = line[21]
            if chain_id is None or cid != chain_id or ter:
                n_chains += 1
                chain_id, ter, last = cid, False, None
            key = (int(number), line[26], line[17:20])
            if key != last:
                res_names.append(res_name)
                res_seq.append(key[0])
                res_chain.append(n_chains - 1)
                last = key
            names.append(line[12:16].strip())
            symbols.append(symbol)
            residue.append(len(res_names) - 1)
        elif line.startswith("MODEL"):
            if names or ended:
                return None  # a second model (or atoms before the first MODEL record)
        elif line.startswith("END"):  # END or ENDMDL
            if not names:
                return None
            ended = True
        elif line.startswith("TER") and line.split()[0] == "TER":
            if chain_id is None:
                return None  # mdtraj has no chain to close
            ter = True
        elif line.startswith("CRYST1"):
            try:  # mdtraj parses the cell and fails on a bad one
                [float(line[i:j]) for i, j in ((6, 15), (15, 24), (24, 33), (33, 40), (40, 47), (47, 54))]
            except ValueError:
                return None
    if not names:
        return None
    return AtomTable(
        names=tuple(names),
        residue=np.array(residue, dtype=int),
        residue_names=tuple(res_names),
        residue_seq=np.array(res_seq, dtype=int),
        residue_chain=np.array(res_chain, dtype=int),
        symbols=tuple(symbols),
        masses=np.array([ELEMENT_MASSES[s] for s in symbols], dtype=float),
    )


def _plain_int(text: str, limit: int) -> bool:
    """A right-justified decimal integer 0 <= n < limit (mdtraj's overflow modes start at the limit)."""
    t = text.strip()
    return t.isascii() and t.isdigit() and int(t) < limit
