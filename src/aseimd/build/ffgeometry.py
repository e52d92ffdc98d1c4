"""Equilibrium geometry and torsion energies read from the force-field XML (for chain growth).

Chain growth places atoms with the bond lengths and angles of the very force
field the chain is simulated with, and weights backbone torsion states
(trans, gauche+, gauche-) by the Boltzmann factors of that force field's
proper-torsion terms.  This module reads those numbers from ``forcefields/*.xml``
(by atom class, or by type where a file uses types) without creating a System,
plus the external-bond atoms of each residue template.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from aseimd.forcefield.loader import forcefield_files

#: Fallback bond length (nm) by element pair, only used where the force field has no term.
_COVALENT_NM = {"H": 0.031, "C": 0.076, "N": 0.071, "O": 0.066, "F": 0.057, "Si": 0.111, "S": 0.105,
                "P": 0.107, "Li": 0.128}


@dataclass(frozen=True)
class FFGeometry:
    """Bond, angle and torsion terms of the family, keyed by atom class."""

    type_class: dict
    type_element: dict
    bonds: dict
    angles: dict
    propers: list
    externals: dict
    #: Matched ``<Proper>`` terms by class quartet (filled on first use; chains repeat the same quartets).
    torsion_terms: dict = field(default_factory=dict, compare=False, repr=False)

    def bond_nm(self, t1: str, t2: str) -> float:
        """Equilibrium length of the bond between atom types t1 and t2, in nm."""
        c1, c2 = self.type_class[t1], self.type_class[t2]
        for key in ((c1, c2), (c2, c1), (t1, t2), (t2, t1)):
            if key in self.bonds:
                return self.bonds[key]
        e1, e2 = self.type_element[t1], self.type_element[t2]
        return _COVALENT_NM.get(e1, 0.075) + _COVALENT_NM.get(e2, 0.075)

    def angle_rad(self, t1: str, t2: str, t3: str) -> float:
        """Equilibrium angle t1-t2-t3, in rad (109.47 degrees if the force field has none)."""
        c = (self.type_class[t1], self.type_class[t2], self.type_class[t3])
        for key in (c, c[::-1], (t1, t2, t3), (t3, t2, t1)):
            if key in self.angles:
                return self.angles[key]
        return math.radians(109.47)

    def torsion_energy_kJ(self, types: tuple[str, str, str, str], phi_rad: float) -> float:
        """Energy of the proper torsion term(s) matching the type quartet at angle ``phi_rad``, in kJ/mol.

        The most specific matching ``<Proper>`` (fewest wildcards) is used, as
        OpenMM does; 0.0 if none matches.
        """
        cls = tuple(self.type_class[t] for t in types)
        if cls not in self.torsion_terms:
            best, best_wild = None, 99
            for key, terms in self.propers:
                for order in (cls, cls[::-1]):
                    if all(k == "" or k == c for k, c in zip(key, order)):
                        wild = sum(k == "" for k in key)
                        if wild < best_wild:
                            best, best_wild = terms, wild
            self.torsion_terms[cls] = best
        best = self.torsion_terms[cls]
        if best is None:
            return 0.0
        return float(sum(k * (1.0 + math.cos(n * phi_rad - phase)) for n, phase, k in best))


@functools.lru_cache(maxsize=4)
def _load(files_key: tuple[str, ...]) -> FFGeometry:
    type_class, type_element, bonds, angles, propers, externals = {}, {}, {}, {}, [], {}
    for path in files_key:
        root = ET.parse(path).getroot()
        for t in root.iterfind("./AtomTypes/Type"):
            type_class[t.get("name")] = t.get("class", t.get("name"))
            type_element[t.get("name")] = t.get("element")
        for res in root.iterfind("./Residues/Residue"):
            externals[res.get("name")] = tuple(e.get("atomName") for e in res.iterfind("ExternalBond"))
        for b in root.iterfind("./HarmonicBondForce/Bond"):
            key = (b.get("class1") or b.get("type1"), b.get("class2") or b.get("type2"))
            bonds[key] = float(b.get("length"))
        for a in root.iterfind("./HarmonicAngleForce/Angle"):
            key = tuple(a.get(f"class{i}") or a.get(f"type{i}") for i in (1, 2, 3))
            angles[key] = float(a.get("angle"))
        for p in root.iterfind("./PeriodicTorsionForce/Proper"):
            key = tuple(p.get(f"class{i}", p.get(f"type{i}", "")) or "" for i in (1, 2, 3, 4))
            terms, n = [], 1
            while p.get(f"periodicity{n}") is not None:
                terms.append((int(p.get(f"periodicity{n}")), float(p.get(f"phase{n}")), float(p.get(f"k{n}"))))
                n += 1
            propers.append((key, tuple(terms)))
    return FFGeometry(type_class, type_element, bonds, angles, propers, externals)


def ff_geometry() -> FFGeometry:
    """The geometry tables of every XML file in ``forcefields/`` (cached)."""
    return _load(tuple(str(p) for p in forcefield_files()))
