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
_OPLS_ETHER = "OPLS-AA ethers (Jorgensen et al., JACS 118, 11225 (1996)), opls_180/181/182/185"
_OPLS_NITRILE = ("OPLS-AA alkanes + nitriles (M. L. P. Price, D. Ostrovsky, W. L. Jorgensen, "
                 "J. Comput. Chem. 22, 1340 (2001)), opls_135/136/140/753-759; CT-CT-CT-CZ torsion derived")
_PDMS_SRC = ("aseimd provisional PDMS set, derived by stated rules (not a literature set); "
             "forcefields/README.md 'pdms.xml'")
_NAFION_SRC = ("perfluoroalkane + CL&P sulfonate; perfluoroether terms derived (rules in forcefields/README.md "
               "'nafion.xml')")

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
    # --- polymer residues (head / repeat / tail; aseimd.build.polymer joins them into chains) ---
    Species("PEH", "PEH", "polymer", 0, "COC*", "peo.xml", _OPLS_ETHER,
            description="PEO head CH3-O-CH2- (methyl cap)"),
    Species("PEO", "PEO", "polymer", 0, "*COC*", "peo.xml", _OPLS_ETHER,
            description="PEO repeat residue -CH2-O-CH2-"),
    Species("PET", "PET", "polymer", 0, "*COC", "peo.xml", _OPLS_ETHER,
            description="PEO tail -CH2-O-CH3 (methyl cap)"),
    Species("PAH", "PAH", "polymer", 0, "CC(C#N)*", "pan.xml", _OPLS_NITRILE,
            description="PAN head CH3-CH(CN)-"),
    Species("PAN", "PAN", "polymer", 0, "*CC(C#N)*", "pan.xml", _OPLS_NITRILE,
            description="PAN repeat unit -CH2-CH(CN)-"),
    Species("PAT", "PAT", "polymer", 0, "*CCC#N", "pan.xml", _OPLS_NITRILE,
            description="PAN tail -CH2-CH2-CN"),
    Species("DMH", "DMH", "polymer", 0, "C[Si](C)(C)O*", "pdms.xml", _PDMS_SRC,
            description="PDMS head (CH3)3Si-O- (trimethylsilyl cap)"),
    Species("DMR", "DMR", "polymer", 0, "*[Si](C)(C)O*", "pdms.xml", _PDMS_SRC,
            description="PDMS repeat unit -Si(CH3)2-O-"),
    Species("DMT", "DMT", "polymer", 0, "*[Si](C)(C)C", "pdms.xml", _PDMS_SRC,
            description="PDMS tail -Si(CH3)3 (trimethylsilyl cap)"),
    Species("NFH", "NFH", "polymer", 0, "FC(F)(F)*", "nafion.xml", _NAFION_SRC,
            description="Li-Nafion head CF3-"),
    Species("NFR", "NFR", "polymer", 0, "*C(F)(F)C(F)(F)*", "nafion.xml", _NAFION_SRC,
            description="Li-Nafion backbone spacer -CF2-CF2- (TFE unit)"),
    Species("NFS", "NFS", "polymer", -1,
            "*C(F)(F)C(*)(F)OC(F)(F)C(F)(C(F)(F)F)OC(F)(F)C(F)(F)S(=O)(=O)[O-]", "nafion.xml", _NAFION_SRC,
            description="Li-Nafion ionic unit -CF2-CF(O-CF2-CF(CF3)-O-CF2-CF2-SO3-)-",
            ionic_atoms=("C7", "F71", "F72", "S", "O3", "O4", "O5")),
    Species("NFT", "NFT", "polymer", 0, "*C(F)(F)F", "nafion.xml", _NAFION_SRC,
            description="Li-Nafion tail -CF3"),
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


# --------------------------------------------------------------------------------------------
# Polymers: how head / repeat / tail residues join into a chain
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PolymerResidue:
    """One residue of a polymer chain and where its backbone runs.

    Attributes
    ----------
    species : str
        Species (= PDB residue) name, e.g. ``"PEO"``.
    backbone : tuple of str
        Backbone atom names in chain order.  The first is bonded to the previous
        residue (or starts the chain, for a head), the last to the next residue
        (or ends it, for a tail).
    stereo : tuple of (str, str) or None
        ``(centre, substituent)`` for a backbone stereocentre (PAN C2 with its
        nitrile C3): which side the substituent is put on sets the configuration.
    """

    species: str
    backbone: tuple[str, ...]
    stereo: tuple[str, str] | None = None


@dataclass(frozen=True)
class Polymer:
    """A polymer aseimd can build.

    Attributes
    ----------
    name : str
        Name on the command line (``PEO``, ``PAN``, ``PDMS``, ``LiNafion``).
    description : str
    head, repeat, tail : PolymerResidue
        Chain = head + repeats + tail.  For LiNafion ``repeat`` is the ionic
        (side-chain) unit and ``spacer`` the TFE unit between side chains.
    units_in_caps : int
        Chemical repeat units carried by head + tail together (a chain of DP n
        has ``n - units_in_caps`` repeat residues).
    default_n_repeat : int
        DP used when neither a length nor a molar mass is given.
    end_groups : str
        The end groups the head and tail residues carry.
    density_g_per_cm3, density_T_K, density_source :
        Experimental density used to size a layer or melt when none is given.
    spacer : PolymerResidue or None
        Backbone spacer residue placed between repeats (LiNafion TFE).
    counter_ion : str or None
        Species of the counter-ion of each charged repeat (LiNafion: ``"Li"``).
    """

    name: str
    description: str
    head: PolymerResidue
    repeat: PolymerResidue
    tail: PolymerResidue
    units_in_caps: int
    default_n_repeat: int
    end_groups: str
    density_g_per_cm3: float
    density_T_K: float
    density_source: str
    spacer: PolymerResidue | None = None
    counter_ion: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def has_stereocentres(self) -> bool:
        """True if head or repeat residues carry a backbone stereocentre."""
        return self.repeat.stereo is not None


_POLYMERS: tuple[Polymer, ...] = (
    Polymer("PEO", "poly(ethylene oxide), CH3-O-(CH2CH2O)n-CH3",
            PolymerResidue("PEH", ("C1", "O1", "C2")), PolymerResidue("PEO", ("C1", "O1", "C2")),
            PolymerResidue("PET", ("C1", "O1", "C2")), units_in_caps=1, default_n_repeat=20,
            end_groups="methyl", density_g_per_cm3=1.076, density_T_K=353.0,
            density_source="melt, Becht 1967 (1.073-1.080 at 353 K), ../shared/REFERENCE_DATA.md",
            aliases=("PEG", "polyethylene oxide")),
    Polymer("PAN", "polyacrylonitrile, H-[CH2-CH(CN)]n-H",
            PolymerResidue("PAH", ("C1", "C2"), ("C2", "C3")), PolymerResidue("PAN", ("C1", "C2"), ("C2", "C3")),
            PolymerResidue("PAT", ("C1", "C2")), units_in_caps=2, default_n_repeat=20,
            end_groups="H", density_g_per_cm3=1.18, density_T_K=298.0,
            density_source="amorphous PAN ~1.18 g/cm3 (REFERENCE_DATA.md: verify)",
            aliases=("polyacrylonitrile",)),
    Polymer("PDMS", "poly(dimethylsiloxane), (CH3)3Si-O-[Si(CH3)2-O]n-Si(CH3)3",
            PolymerResidue("DMH", ("C1", "SI", "O")), PolymerResidue("DMR", ("SI", "O")),
            PolymerResidue("DMT", ("SI", "C1")), units_in_caps=0, default_n_repeat=20,
            end_groups="trimethylsilyl", density_g_per_cm3=0.965, density_T_K=298.0,
            density_source="handbook 0.965-0.97 g/cm3 (REFERENCE_DATA.md: verify)",
            aliases=("polydimethylsiloxane",)),
    Polymer("LiNafion", "Li-Nafion: PTFE backbone, -O-CF2-CF(CF3)-O-CF2-CF2-SO3- Li+ side chains",
            PolymerResidue("NFH", ("C1",)), PolymerResidue("NFS", ("C1", "C2"), ("C2", "O1")),
            PolymerResidue("NFT", ("C1",)), units_in_caps=0, default_n_repeat=4,
            end_groups="CF3", density_g_per_cm3=2.0, density_T_K=298.0,
            density_source="dry Nafion EW 1100 ~1.98-2.1 g/cm3 (REFERENCE_DATA.md: verify)",
            spacer=PolymerResidue("NFR", ("C1", "C2")), counter_ion="Li",
            aliases=("Nafion", "Li-Nafion")),
)


def all_polymers() -> tuple[Polymer, ...]:
    """All polymers, in table order."""
    return _POLYMERS


def get_polymer(name: str) -> Polymer:
    """Look a polymer up by name or alias (case-insensitive).

    Raises
    ------
    BuildError
        If ``name`` is unknown; the message lists the allowed names.
    """
    key = str(name).strip().lower()
    for p in _POLYMERS:
        if key in (p.name.lower(), *(a.lower() for a in p.aliases)):
            return p
    raise BuildError(f"unknown polymer {name!r}; allowed: {', '.join(p.name for p in _POLYMERS)}")
