"""Force field: OPLS-AA carbonates, CL&P anions, Aqvist Li+ from ``forcefields/*.xml``.

Public API::

    load_forcefield()        -> openmm.app.ForceField with every XML of the family
    create_system(topology, *, charge_scale=0.8, cutoff_nm=1.0, constraints="HBonds",
                  switch_distance_nm=None, ewald_error_tolerance=5e-4) -> openmm.System
    forcefield_provenance()  -> dict for build.json
    missing_terms(topology, system) -> list[str]   bonded terms the System lacks (coverage check)
    check_neutrality(topology, charges_e, periodic=...)  integral residues, neutral box
    FORCE_GROUPS             -> {"bonds": 0, "angles": 1, "torsions": 2, "coulomb": 3, "lj": 4, "other": 5}

See docs/forcefield.md.
"""

from aseimd.forcefield.charges import atom_charge_scales
from aseimd.forcefield.coverage import missing_terms
from aseimd.forcefield.groups import FORCE_GROUPS
from aseimd.forcefield.loader import (
    ResidueTemplate,
    TemplateAtom,
    forcefield_files,
    forcefield_provenance,
    load_forcefield,
    residue_templates,
)
from aseimd.forcefield.neutrality import CHARGE_TOLERANCE_E, check_neutrality
from aseimd.forcefield.system import create_system

__all__ = [
    "CHARGE_TOLERANCE_E",
    "FORCE_GROUPS",
    "ResidueTemplate",
    "TemplateAtom",
    "atom_charge_scales",
    "check_neutrality",
    "create_system",
    "forcefield_files",
    "forcefield_provenance",
    "load_forcefield",
    "missing_terms",
    "residue_templates",
]
