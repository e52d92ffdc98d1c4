"""Find and load the force-field family shipped under ``forcefields/``.

Every ``*.xml`` file in the shipped folder belongs to one family (same 1-4
scales, geometric mixing applied by :mod:`aseimd.forcefield.mixing`), so all of
them load into one :class:`openmm.app.ForceField`.  Residue templates are also
read here (with :mod:`xml.etree.ElementTree`) for builders that need atom names,
elements and bonds without creating a System.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from aseimd.errors import ForceFieldError
from aseimd.resources import data_dir


@dataclass(frozen=True)
class TemplateAtom:
    """One atom of a residue template: name, atom type, element symbol, charge in e."""

    name: str
    type: str
    element: str
    charge: float


@dataclass(frozen=True)
class ResidueTemplate:
    """A residue template of the force-field XML.

    Attributes
    ----------
    name : str
        Residue name (the species' PDB residue name).
    atoms : tuple of TemplateAtom
        Atoms in template order.
    bonds : tuple of (str, str)
        Bonds by atom name.
    filename : str
        XML file that defines the template.
    """

    name: str
    atoms: tuple[TemplateAtom, ...]
    bonds: tuple[tuple[str, str], ...]
    filename: str

    @property
    def net_charge(self) -> float:
        """Sum of the template charges, in e."""
        return float(sum(a.charge for a in self.atoms))


def forcefield_files() -> list[Path]:
    """All XML files of the family, sorted by name.

    Returns
    -------
    list of pathlib.Path
        Paths of ``forcefields/*.xml`` (works from a wheel and a checkout).
    """
    files = sorted(data_dir("forcefields").glob("*.xml"))
    if not files:
        raise ForceFieldError(f"no force-field XML files in {data_dir('forcefields')}")
    return files


def load_forcefield():
    """Load every XML file of the family into one :class:`openmm.app.ForceField`.

    Returns
    -------
    openmm.app.ForceField
        A fresh object on each call (callers may register template generators).
    """
    from openmm import app

    from aseimd.forcefield.metal import residue_name_matcher

    ff = app.ForceField(*(str(p) for p in forcefield_files()))
    ff.registerTemplateMatcher(residue_name_matcher)  # Li metal (LIM) vs Li+ (LI): same graph
    return ff


def residue_templates() -> dict[str, ResidueTemplate]:
    """Residue templates of all family files, keyed by residue name.

    Raises
    ------
    ForceFieldError
        If two files define the same residue or a template uses an unknown atom type.
    """
    elements: dict[str, str] = {}
    raw = []
    for path in forcefield_files():
        root = ET.parse(path).getroot()
        for t in root.iterfind("./AtomTypes/Type"):
            elements[t.get("name")] = t.get("element")
        for res in root.iterfind("./Residues/Residue"):
            raw.append((path.name, res))
    templates: dict[str, ResidueTemplate] = {}
    for filename, res in raw:
        name = res.get("name")
        if name in templates:
            raise ForceFieldError(
                f"residue {name!r} defined in both {templates[name].filename} and {filename}"
            )
        atoms = []
        for a in res.iterfind("Atom"):
            if a.get("type") not in elements:
                raise ForceFieldError(f"residue {name!r} in {filename}: unknown atom type {a.get('type')!r}")
            atoms.append(TemplateAtom(a.get("name"), a.get("type"), elements[a.get("type")],
                                      float(a.get("charge", "0"))))
        bonds = tuple((b.get("atomName1"), b.get("atomName2")) for b in res.iterfind("Bond"))
        templates[name] = ResidueTemplate(name, tuple(atoms), bonds, filename)
    return templates


def forcefield_provenance() -> dict:
    """What a built system records about its force field (goes into ``build.json``).

    Returns
    -------
    dict
        ``{"files": {filename: sha256}, "openmm_version": str, "sources": {residue: citation},
        "mixing": "geometric", "scale14": {"coulomb": 0.5, "lj": 0.5}}``
    """
    import openmm

    from aseimd.species import all_species

    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in forcefield_files()}
    sources = {sp.residue: sp.source for sp in all_species()}
    return {
        "files": files,
        "openmm_version": openmm.__version__,
        "sources": sources,
        "mixing": "geometric",
        "scale14": {"coulomb": 0.5, "lj": 0.5},
    }
