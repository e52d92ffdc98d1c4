"""The solvent-cn mode: PAN nitrile <-> carbonate coordination next to the Li+ shell.

Roles (group labels) and their defaults:

=============  =====================================================================
``Li``         centre: ``resname LI`` (the Li+ residue of the species table)
``N_nitrile``  N bonded to exactly one atom, a C with exactly two neighbours (C#N)
``C_nitrile``  the C of that C#N
``C_carbonyl`` carbonate carbon: C bonded to three O (EC, PC, FEC, DMC, EMC, DEC);
               without bonds in the topology: atom ``C1`` of the carbonate residues
``O_carbonyl`` the O of that carbon with no other bond (atom ``O1`` without bonds)
``O_ether``    O bonded to two C, neither of them a carbonyl/carbonate carbon (PEO)
``anion``      the coordinating atoms of the anions: F of PF6, O of TFSI (TFS) and FSI
=============  =====================================================================

The chemistry-based defaults need bonds in the topology (a PDB with CONECT
records, as OpenMM and mdtraj write them, PSF, PRMTOP, ...). Any role can be
given as an mdtraj selection instead. A role that matches nothing is left out
with a warning, except ``N_nitrile`` and ``C_carbonyl``, which the mode needs.

Geometric criterion. A carbonate molecule (the residue of a ``C_carbonyl``
atom) is *nitrile-bound* in a frame when its carbonyl C lies within r_NC of a
nitrile N or within r_CC of a nitrile C (the antiparallel C#N...C=O dipole
pair), where r_NC and r_CC are the first minima of g(r) of the pairs
``N_nitrile-C_carbonyl`` and ``C_nitrile-C_carbonyl`` (or given cut-offs);
otherwise it is *free*. The bound fraction is averaged over carbonate
molecules and frames; it is also given through N alone and C alone. The
nitrile-carbonyl coordination number is the mean number of carbonyl C within
r_NC of a nitrile N (``cn`` of the pair ``N_nitrile-C_carbonyl``). Next to it:
Li+-N(nitrile), Li+-O(carbonyl), Li+-O(ether) and Li+-anion coordination
numbers, shell compositions and, with an anion, SSIP/CIP/AGG speciation.
"""

from __future__ import annotations

import numpy as np

from aseimd.analysis.coordination import (
    ANION_COORDINATING_ELEMENT,
    CoordinationResult,
    Group,
    PairSpec,
    PairsStream,
    group_from_indices,
    make_group,
)
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

#: Shell roles of the solvent-cn mode, in output order.
ROLES = ("N_nitrile", "C_nitrile", "C_carbonyl", "O_carbonyl", "O_ether", "anion")
#: Roles whose coordination around Li+ is reported.
LI_SHELLS = ("N_nitrile", "O_carbonyl", "O_ether", "anion")
#: Pair keys of the nitrile-carbonyl contacts.
NC_PAIR, CC_PAIR = "N_nitrile-C_carbonyl", "C_nitrile-C_carbonyl"

DEFAULT_LI_SELECTION = "resname LI"
_CARBONATE_RESIDUES = ("EC", "PC", "FEC", "DMC", "EMC", "DEC")


def detect_roles(topology) -> dict[str, tuple[str, np.ndarray]]:
    """Default atom groups of the solvent-cn roles found in an mdtraj topology.

    Returns
    -------
    dict of str to (str, numpy.ndarray)
        role -> (how it was chosen, atom indices); roles with no atoms are absent.
    """
    n = topology.n_atoms
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in topology.bonds:
        nbrs[a.index].append(b.index)
        nbrs[b.index].append(a.index)
    elem = [a.element.symbol if a.element is not None else "" for a in topology.atoms]
    found: dict[str, tuple[str, list[int]]] = {}
    if topology.n_bonds > 0:
        n_nit = [i for i in range(n) if elem[i] == "N" and len(nbrs[i]) == 1
                 and elem[nbrs[i][0]] == "C" and len(nbrs[nbrs[i][0]]) == 2]
        c_carb = [i for i in range(n) if elem[i] == "C" and len(nbrs[i]) == 3
                  and all(elem[j] == "O" for j in nbrs[i])]
        c_carb_set = set(c_carb)
        o_carb = [j for i in c_carb for j in nbrs[i] if len(nbrs[j]) == 1]
        carbonyl_like = {i for i in range(n) if elem[i] == "C"
                         and any(elem[j] == "O" and len(nbrs[j]) == 1 for j in nbrs[i])} | c_carb_set
        o_eth = [i for i in range(n) if elem[i] == "O" and len(nbrs[i]) == 2
                 and all(elem[j] == "C" and j not in carbonyl_like for j in nbrs[i])]
        found["N_nitrile"] = ("auto: N bonded only to an sp C (C#N)", n_nit)
        found["C_nitrile"] = ("auto: C of C#N", [nbrs[i][0] for i in n_nit])
        found["C_carbonyl"] = ("auto: C bonded to three O (carbonate)", c_carb)
        found["O_carbonyl"] = ("auto: terminal O of a carbonate C", o_carb)
        found["O_ether"] = ("auto: O bonded to two non-carbonyl C (ether)", o_eth)
    else:
        res = set(_CARBONATE_RESIDUES)
        found["C_carbonyl"] = ("by name: C1 of carbonate residues (topology has no bonds)",
                               [a.index for a in topology.atoms if a.residue.name in res and a.name == "C1"])
        found["O_carbonyl"] = ("by name: O1 of carbonate residues (topology has no bonds)",
                               [a.index for a in topology.atoms if a.residue.name in res and a.name == "O1"])
    anion_element = ANION_COORDINATING_ELEMENT
    anion = [a.index for a in topology.atoms
             if a.residue.name in anion_element and elem[a.index] == anion_element[a.residue.name]]
    found["anion"] = ("auto: F of PF6, O of TFS/FSI", anion)
    return {role: (how, np.array(sorted(set(idx)), dtype=int)) for role, (how, idx) in found.items() if idx}


def solvent_cn(traj: Trajectory, **options) -> CoordinationResult:
    """Nitrile-carbonate binding and the Li+ shell (see module doc for the criterion).

    One streamed pass over the role atoms (two when a cut-off comes from g(r)); the
    same computation as :class:`SolventCNAnalysis` in :func:`aseimd.analysis.engine.run_analyses`.
    Keyword arguments as in :func:`solvent_cn_stream`.

    Returns
    -------
    CoordinationResult
        With ``solvent_cn`` holding the bound/free fractions and the nitrile-carbonyl CN.
    """
    from aseimd.analysis.engine import stream

    pairs_stream = solvent_cn_stream(traj, **options)
    stream(traj, [pairs_stream])
    return pairs_stream.result()


def solvent_cn_stream(
    traj: Trajectory,
    *,
    center: dict[str, str] | None = None,
    groups: dict[str, str] | None = None,
    cutoffs_nm: dict[str, float] | None = None,
    r_max_nm: float | None = None,
    bin_nm: float = 0.005,
    residence: bool = False,
    n_blocks: int = 5,
    cutoff_rule: str = "significance",
) -> PairsStream:
    """The checked stream of :func:`solvent_cn` (a :class:`~aseimd.analysis.coordination.PairsStream`).

    Parameters
    ----------
    traj : Trajectory
        Opened trajectory.
    center : dict of str to str, optional
        ``{label: selection}`` of the Li+ centre atoms; default ``{"Li": "resname LI"}``.
    groups : dict of str to str, optional
        Role -> mdtraj selection, overriding the detected defaults; roles are :data:`ROLES`.
    cutoffs_nm : dict of str to float, optional
        Given cut-offs in nm per pair key: a Li shell role (``"O_carbonyl"``, ...),
        ``"N_nitrile-C_carbonyl"`` or ``"C_nitrile-C_carbonyl"``.
    r_max_nm, bin_nm, residence, n_blocks, cutoff_rule
        See :func:`aseimd.analysis.coordination.run_pairs`.

    Returns
    -------
    PairsStream
        Its ``result()`` after the pass is a ``CoordinationResult`` with ``solvent_cn`` holding the
        bound/free fractions and the nitrile-carbonyl CN.
    """
    groups = dict(groups or {})
    unknown = sorted(set(groups) - set(ROLES))
    if unknown:
        raise AnalysisError(f"unknown solvent-cn group {unknown[0]!r}; allowed: {', '.join(ROLES)}")
    if center is not None and len(center) != 1:
        raise AnalysisError(f"exactly one centre group is needed, got {len(center)}: {list(center)}")
    c_label, c_sel = next(iter(center.items())) if center else ("Li", DEFAULT_LI_SELECTION)
    if c_label in ROLES:
        raise AnalysisError(f"centre label {c_label!r} clashes with a solvent-cn role; use e.g. 'Li'")
    warnings: list[str] = []
    detected = detect_roles(traj.topology)
    sel: dict[str, Group] = {}
    for role in ROLES:
        if role in groups:
            sel[role] = make_group(traj, role, groups[role])
        elif role in detected:
            how, idx = detected[role]
            sel[role] = group_from_indices(traj.topology, role, how, idx)
    for role in ("N_nitrile", "C_carbonyl"):
        if role not in sel:
            raise AnalysisError(
                f"solvent-cn mode found no {role} atoms (auto-detection needs bonds in the topology); "
                f"give --shell {role}=SELECTION"
            )
    for role in ROLES:
        if role not in sel:
            warnings.append(f"no {role} atoms found: left out (give --shell {role}=SELECTION)")
    all_groups: dict[str, Group] = dict(sel)
    try:
        all_groups[c_label] = make_group(traj, c_label, c_sel)
    except AnalysisError:
        if center is not None:
            raise
        warnings.append(f"no Li+ ({DEFAULT_LI_SELECTION!r} matches nothing): no Li+ coordination numbers")

    pairs: list[PairSpec] = []
    if c_label in all_groups:
        pairs += [PairSpec(role, c_label, role) for role in LI_SHELLS if role in sel]
    pairs.append(PairSpec(NC_PAIR, "N_nitrile", "C_carbonyl"))
    if "C_nitrile" in sel:
        pairs.append(PairSpec(CC_PAIR, "C_nitrile", "C_carbonyl"))
    cutoffs_nm = dict(cutoffs_nm or {})
    keys = [p.key for p in pairs]
    unknown = sorted(set(cutoffs_nm) - set(keys))
    if unknown:
        raise AnalysisError(f"cut-off given for unknown pair {unknown[0]!r}; pairs: {', '.join(keys)}")
    pairs = [PairSpec(p.key, p.center, p.shell, cutoffs_nm.get(p.key)) for p in pairs]
    nitrile_pairs = [k for k in (NC_PAIR, CC_PAIR) if k in keys]
    has_li = c_label in all_groups
    pairs_stream = PairsStream(
        traj, all_groups, pairs, r_max_nm=r_max_nm, bin_nm=bin_nm,
        composition_center=c_label if has_li else None,
        anion_pair="anion" if has_li and "anion" in sel else None,
        residence=residence, bound_union={"carbonate_bound": nitrile_pairs}, n_blocks=n_blocks,
        cutoff_rule=cutoff_rule,
    )
    pairs_stream.finishers.append(lambda result: _finish(result, warnings, sel))
    return pairs_stream


def _finish(result: CoordinationResult, warnings: list[str], sel: dict) -> CoordinationResult:
    """The solvent-cn block (bound/free fractions, nitrile-carbonyl CN) on top of the pair results."""
    result.warnings[:0] = warnings
    union = (result.bound_union or {}).get("carbonate_bound")
    nc = result.pairs[NC_PAIR]
    cc = result.pairs.get(CC_PAIR)
    bound = union["bound_fraction"] if union else float("nan")
    result.solvent_cn = {
        "carbonate_bound_fraction": bound,
        "carbonate_bound_fraction_stderr": union["bound_fraction_stderr"] if union else float("nan"),
        "carbonate_free_fraction": 1.0 - bound,
        "bound_fraction_via_N": nc.shell_bound_fraction,
        "bound_fraction_via_C": cc.shell_bound_fraction if cc else None,
        "pairs_used": union["pairs"] if union else [],
        "nitrile_carbonyl_cn": nc.cn,
        "nitrile_carbonyl_cn_stderr": nc.cn_stderr,
        "n_carbonate_molecules": sel["C_carbonyl"].n_residues,
        "n_nitrile_groups": int(len(sel["N_nitrile"].indices)),
        "criterion": (
            "a carbonate molecule is nitrile-bound when its carbonyl C is within the N_nitrile-C_carbonyl "
            "cut-off of a nitrile N or within the C_nitrile-C_carbonyl cut-off of a nitrile C; "
            "nitrile_carbonyl_cn = mean number of carbonyl C within the N_nitrile-C_carbonyl cut-off "
            "of a nitrile N"
        ),
    }
    return result


class SolventCNAnalysis:
    """Nitrile-carbonate binding and the Li+ shell (:func:`solvent_cn`) as an analysis object.

    ``prepare`` checks the options and returns the stream the engine feeds from
    its shared pass; keyword arguments as in :func:`solvent_cn`; the result is a
    ``CoordinationResult``.
    """

    name = "solvent-cn"

    def __init__(self, **options) -> None:
        self.options = options
        self._stream = None

    def prepare(self, traj) -> PairsStream:
        """Check the options against ``traj``; the stream the engine feeds."""
        self._stream = solvent_cn_stream(traj, **self.options)
        return self._stream

    def conclude(self, pos, traj) -> CoordinationResult:
        """The result of the fed stream."""
        return self._stream.result()
