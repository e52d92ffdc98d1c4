"""Neutrality: every residue carries an integral charge, a periodic box none.

PME with a net charge adds a uniform neutralising background, an artefact no
aseimd system should rely on; a non-integral residue is a template error (a
charge lost when a group was spread over atoms, e.g. a sulfonate's -1 over
SO3 and CF3 as CL&P does for triflate).  Both are refused by
:func:`aseimd.forcefield.create_system` before any scaling.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from aseimd.errors import ForceFieldError

#: Largest allowed distance of a residue's net charge from an integer, in e.
CHARGE_TOLERANCE_E = 1e-6


def residue_charges_e(topology, charges_e: np.ndarray) -> list[tuple[object, float]]:
    """Net (unscaled) charge of every residue.

    Parameters
    ----------
    topology : openmm.app.Topology
    charges_e : numpy.ndarray, shape=(n_atoms,)
        Per-atom charges in e, in topology order.

    Returns
    -------
    list of (openmm.app.Residue, float)
    """
    return [(res, float(sum(charges_e[a.index] for a in res.atoms()))) for res in topology.residues()]


def check_neutrality(topology, charges_e: np.ndarray, *, periodic: bool,
                     tolerance_e: float = CHARGE_TOLERANCE_E) -> None:
    """Refuse a residue with a non-integral charge, and a periodic box with a net charge.

    Parameters
    ----------
    topology : openmm.app.Topology
    charges_e : numpy.ndarray, shape=(n_atoms,)
        Unscaled per-atom charges in e.
    periodic : bool
        Whether the box must be neutral (PME); a molecule in vacuum may be charged.
    tolerance_e : float
        Allowed distance from an integer, in e.

    Raises
    ------
    ForceFieldError
        Naming the first offending residue (name, index, chain and its charge), or
        the box's net charge and the residues that carry it.
    """
    total = 0
    by_name: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for res, q in residue_charges_e(topology, charges_e):
        n = round(q)
        if abs(q - n) > tolerance_e:
            raise ForceFieldError(
                f"residue {res.name!r} (index {res.index}, chain {res.chain.index}) has net charge {q:+.6f} e, "
                f"not an integer within {tolerance_e:g} e; fix the charges of its template"
            )
        total += n
        if n:
            by_name[res.name][0] += 1
            by_name[res.name][1] += n
    if periodic and total != 0:
        carriers = ", ".join(f"{count} {name} ({q:+d} e)" for name, (count, q) in sorted(by_name.items()))
        raise ForceFieldError(
            f"periodic box has net charge {total:+d} e (charged residues: {carriers}); allowed: 0 e "
            "(PME would add a uniform neutralising background)"
        )
