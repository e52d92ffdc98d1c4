"""The species table: every molecule, ion and (later) polymer repeat unit aseimd knows.

Each :class:`Species` names its PDB residue, formal charge, SMILES, the
force-field file under ``forcefields/`` that parametrises it, and the source of
those parameters. Residue and atom names in every built ``system.pdb`` are the
ones defined here and in the force-field XML templates.

Salts are pairs of species (:data:`SALTS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aseimd.errors import BuildError

#: Allowed values of :attr:`Species.kind`.
KINDS = ("cation", "anion", "solvent", "polymer", "metal")


@dataclass(frozen=True)
class Species:
    """One molecule or ion type.

    Attributes
    ----------
    name : str
        Name used in recipes and on the command line (``"EC"``, ``"PF6"``, ``"Li"``).
    residue : str
        PDB residue name (at most 3 characters) in built systems.
    kind : str
        One of :data:`KINDS`.
    formal_charge : int
        Formal (unscaled) charge in e.
    smiles : str
        SMILES with all formal charges; hydrogens implicit.
    forcefield_file : str
        File name under ``forcefields/`` holding the residue template and parameters.
    source : str
        Citation of the parameters.
    density_g_per_cm3 : float or None
        Liquid density used to estimate solution volumes (solvents only).
    density_T_K : float or None
        Temperature of that density.
    density_source : str
        Citation of the density.
    description : str
        Human-readable name.
    aliases : tuple of str
        Other names accepted by :func:`get_species`.
    ionic_atoms : tuple of str
        For residues that are not ions as a whole (``kind`` polymer or solvent) but
        carry a charged group, e.g. the sulfonate of a Li-Nafion repeat unit: the
        atom names of that group.  Their charges are scaled with the ion charge
        scale (see :func:`aseimd.forcefield.charges.atom_charge_scales`).  Residues
        of kind ``cation``/``anion`` are scaled as a whole and leave this empty.
    """

    name: str
    residue: str
    kind: str
    formal_charge: int
    smiles: str
    forcefield_file: str
    source: str
    density_g_per_cm3: float | None = None
    density_T_K: float | None = None
    density_source: str = ""
    description: str = ""
    aliases: tuple[str, ...] = field(default=())
    ionic_atoms: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"species {self.name}: kind {self.kind!r} not in {KINDS}")
        if len(self.residue) > 3:
            raise ValueError(f"species {self.name}: residue {self.residue!r} longer than 3 characters")
        if self.ionic_atoms and self.kind in ("cation", "anion"):
            raise ValueError(f"species {self.name}: ionic_atoms is for partly charged residues, not {self.kind}s")

    @property
    def molar_mass_g_per_mol(self) -> float:
        """Molar mass from the SMILES (RDKit average masses), in g/mol."""
        return _molar_mass(self.smiles)


def _molar_mass(smiles: str) -> float:
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    mol = Chem.MolFromSmiles(smiles)
    return float(Descriptors.MolWt(mol))


_XU2004 = "K. Xu, Chem. Rev. 104, 4303 (2004), Table 2"
_CLP = "J. N. Canongia Lopes, A. A. H. Padua, J. Phys. Chem. B 108, 16893 (2004) (CL&P)"
_OPLS_PC = "OPLS-AA (Jorgensen et al., JACS 118, 11225 (1996)), PC types opls_771-779"
_OPLS_GROUP = _OPLS_PC + " + aseimd group charges"

_SPECIES: tuple[Species, ...] = (
    Species("Li", "LI", "cation", +1, "[Li+]", "ions.xml",
            "J. Aqvist, J. Phys. Chem. 94, 8021 (1990)", description="lithium ion",
            aliases=("Li+",)),
    Species("PF6", "PF6", "anion", -1, "F[P-](F)(F)(F)(F)F", "ions.xml",
            _CLP, description="hexafluorophosphate", aliases=("PF6-",)),
    Species("TFSI", "TFS", "anion", -1, "FC(F)(F)S(=O)(=O)[N-]S(=O)(=O)C(F)(F)F", "ions.xml",
            _CLP, description="bis(trifluoromethanesulfonyl)imide", aliases=("TFSI-", "NTf2")),
    Species("FSI", "FSI", "anion", -1, "FS(=O)(=O)[N-]S(=O)(=O)F", "ions.xml",
            "K. Shimizu et al., J. Phys. Chem. B 114, 3592 (2010) (CL&P FSI)",
            description="bis(fluorosulfonyl)imide", aliases=("FSI-",)),
    Species("EC", "EC", "solvent", 0, "O=C1OCCO1", "carbonates.xml", _OPLS_GROUP,
            1.321, 313.15, _XU2004, "ethylene carbonate"),
    Species("PC", "PC", "solvent", 0, "CC1COC(=O)O1", "carbonates.xml", _OPLS_PC,
            1.200, 298.15, _XU2004, "propylene carbonate"),
    Species("DMC", "DMC", "solvent", 0, "COC(=O)OC", "carbonates.xml", _OPLS_GROUP,
            1.063, 298.15, _XU2004, "dimethyl carbonate"),
    Species("EMC", "EMC", "solvent", 0, "CCOC(=O)OC", "carbonates.xml", _OPLS_GROUP,
            1.006, 298.15, _XU2004, "ethyl methyl carbonate"),
    Species("DEC", "DEC", "solvent", 0, "CCOC(=O)OCC", "carbonates.xml", _OPLS_GROUP,
            0.969, 298.15, _XU2004, "diethyl carbonate"),
    Species("FEC", "FEC", "solvent", 0, "O=C1OCC(F)O1", "carbonates.xml", _OPLS_GROUP,
            1.454, 298.15, "supplier data sheet (Sigma-Aldrich 757349) -- verify",
            "fluoroethylene carbonate"),
    # Li metal: one atom per residue; frozen BCC slab atoms (aseimd.forcefield.metal), not the Li+ ion
    Species("LiMetal", "LIM", "metal", 0, "[Li]", "li_metal.xml",
            "UFF Li: A. K. Rappe et al., J. Am. Chem. Soc. 114, 10024 (1992), Table 1 "
            "(x = 2.451 A, D = 0.025 kcal/mol)", description="lithium metal (frozen BCC slab atom)",
            aliases=("Li(s)", "Li0", "Li-metal")),
)

#: Salts as (cation name, anion name).
SALTS: dict[str, tuple[str, str]] = {
    "LiPF6": ("Li", "PF6"),
    "LiTFSI": ("Li", "TFSI"),
    "LiFSI": ("Li", "FSI"),
}


def all_species() -> tuple[Species, ...]:
    """All species, in table order."""
    return _SPECIES


def get_species(name: str) -> Species:
    """Look a species up by name, alias or residue name (case-insensitive).

    Raises
    ------
    BuildError
        If ``name`` is unknown; the message lists the allowed names.
    """
    key = name.strip().lower()
    for sp in _SPECIES:
        if key in (sp.name.lower(), sp.residue.lower(), *(a.lower() for a in sp.aliases)):
            return sp
    allowed = ", ".join(sp.name for sp in _SPECIES)
    raise BuildError(f"unknown species {name!r}; allowed: {allowed}")


def species_for_residue(residue: str) -> Species | None:
    """Return the species whose PDB residue name is ``residue`` (exact match), or None."""
    for sp in _SPECIES:
        if sp.residue == residue:
            return sp
    return None


def get_salt(name: str) -> tuple[Species, Species]:
    """Return (cation, anion) species of a salt such as ``"LiPF6"`` (case-insensitive)."""
    for salt, (cat, an) in SALTS.items():
        if salt.lower() == name.strip().lower():
            return get_species(cat), get_species(an)
    raise BuildError(f"unknown salt {name!r}; allowed: {', '.join(SALTS)}")
