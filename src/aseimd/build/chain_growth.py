"""Self-avoiding growth of all-atom polymer chains in a periodic box or a layer.

A chain is a sequence of residue templates (head, repeats, tail) joined
backbone to backbone.  It is grown residue by residue:

* backbone atoms by the natural extension reference frame (NeRF): bond length
  and angle from the force field, the torsion drawn from trans / gauche+ /
  gauche- with Boltzmann weights of the force field's own torsion terms at the
  build temperature (plus 10 degrees of Gaussian jitter);
* side-chain torsions weighted by the summed torsion terms about the bond
  (mixed with uniform weights);
* two substituents of a backbone atom (H, F, CH3, CN, a side chain) on the two
  remaining tetrahedral directions; which one goes on which side sets the
  configuration of a stereocentre, so the tacticity of a chain is exactly the
  sign sequence it is grown with;
* side chains (nitrile, methyls, the perfluoroether side chain of Nafion)
  outward from the backbone, their own rotatable torsions drawn like the
  backbone's.

Each growth step (a residue, or one rotatable side-chain level) is placed as
a set of candidates and tested against every atom already placed (all chains)
through a fixed-capacity cell grid (no all-pairs matrix), minimum image in x
and y (and z in a bulk box); pairs up to three bonds apart are exempt.

* First :data:`QUICK_DRAWS` candidates are drawn from the torsion weights and
  the first that fits is taken (rejection sampling).
* If none fits, every state combination of the step (trans / gauche+ /
  gauche- of each of its torsions; both configurations of a stereocentre in an
  atactic chain) is placed at once, repeated with fresh jitter up to about
  :data:`GROWTH_CANDIDATES` candidates, checked in one vectorised cell-list
  query, and one that fits is chosen with probability proportional to its
  force-field weight (:func:`rosenbluth_choice`).

Both stages choose a fitting state with probability ``w_i / sum(w_fitting)``,
so the torsion statistics are the force-field Boltzmann weights wherever
nothing is rejected (a free chain with no steric clashes: tested), and the
Rosenbluth distribution otherwise: conditioned on self-avoidance step by step,
without the Rosenbluth-weight reweighting of whole chains (in a crowded box
states that fit are slightly favoured over their Boltzmann share of the
self-avoiding ensemble; the relaxation and the MD that follows equilibrate
them).  A step with no fitting candidate makes the walk back up one step,
further (up to :data:`MAX_BACKTRACK_DEPTH`, in a chain's later tries
:data:`MAX_BACKTRACK_DEPTH_LATE`) each time it fails again at or
before the same place; a step backed into chooses among its fitting states
with equal weights a quarter of the time, so stiff backbones and side chains
can turn away from a dead end; a chain that backs up too often is restarted
elsewhere.  A chain starts at the least crowded of many random points.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from aseimd.build.ffgeometry import FFGeometry
from aseimd.build.geometry import _excluded_keys
from aseimd.errors import BuildError

#: Contact radii (nm) used during growth: a pair is accepted at >= r_i + r_j (times overlap_scale).
GROWTH_RADIUS_NM = {"H": 0.09, "F": 0.095}
GROWTH_RADIUS_HEAVY_NM = 0.14
#: Atom pairs of one chain at most this many bonds apart are not tested during growth.
GROWTH_EXEMPT_BONDS = 3
#: Chance that a step backed into draws its torsion states with equal weights.
BACKTRACK_UNIFORM = 0.25
#: Deepest back-up (in steps) after repeated failures at the same place.  Shallow on purpose: a deep
#: back-up throws away steps that fitted and regrows them through the same crowd; a dead end that two
#: steps (with the equal-weight redraws of the steps backed into) cannot leave is left by the restart
#: instead.  Measured (benchmarks/README.md, build_speed.py): 6 PAN chains of DP 60 in a bulk box at
#: 50 % density grow ~2.7x faster at depth 2 than at 8, and 2 nm PAN layers of DP 60 chains grow at
#: the first start-box density where depth 8 needed the looser fallback box in 4 of 6 seeds.
MAX_BACKTRACK_DEPTH = 2
#: Deepest back-up in the later tries of a chain (after :data:`SHALLOW_TRIES` restarts): stiff chains
#: (Li-Nafion's PTFE backbone with its side chains, 682 atoms) can need to undo more than two steps to
#: leave a dead end; at depth 2 alone the full-size systems/li-nafion-lipf6.yaml layer does not grow.
MAX_BACKTRACK_DEPTH_LATE = 8
#: Tries (restarts) of a chain made with the shallow back-up before the deep one.
SHALLOW_TRIES = 2
#: Back-ups allowed per growth step of a chain before it is restarted elsewhere.
BACKTRACKS_PER_STEP = 3.0
#: Radius (nm) within which placed atoms are counted to pick the least crowded of the chain starts.
START_PROBE_NM = 0.6
#: Smallest probability of any torsion state during growth (lets stiff chains turn out of dead ends).
GAUCHE_FLOOR = 0.02
#: Share of uniform weights mixed into side-chain torsion states.
SIDE_CHAIN_UNIFORM = 0.5
#: Candidates drawn from the torsion weights before every state of a step is tried at once.
QUICK_DRAWS = 4
#: Candidates of a full evaluation (all state combinations, repeated with fresh jitter up to about this many).
GROWTH_CANDIDATES = 24
#: Most state combinations of one step that are enumerated (more: GROWTH_CANDIDATES draws instead).
ENUMERATE_MAX_STATES = 27
_TRANS, _GPLUS, _GMINUS = math.pi, math.pi / 3, -math.pi / 3
_R_KJ = 0.0083144626


@dataclass
class ChainBlueprint:
    """Atoms, bonds and the placement plan of one chain (chain-local indices).

    Attributes
    ----------
    names, elements, types : list of str
    residue_of : numpy.ndarray, shape=(n_atoms,), dtype=int
        Residue index (in ``residues``) of every atom.
    residues : list of str
        Residue names in chain order.
    bonds : numpy.ndarray, shape=(n_bonds, 2), dtype=int
    backbone : numpy.ndarray, shape=(n_backbone,), dtype=int
    steps : list of list of tuple
        Placement operations per growth step (one per residue and per rotatable side-chain level).
    var_probs : numpy.ndarray, shape=(n_vars, 3)
        Probabilities of trans, gauche+, gauche- for every torsion variable.
    var_step : numpy.ndarray, shape=(n_vars,), dtype=int
        Growth step each torsion variable belongs to.
    stereocentres : list of (int, int, int)
        ``(centre, substituent, other)`` atoms of each stereocentre, chain order.
    excluded : numpy.ndarray
        Sorted keys ``i * n + j`` of atom pairs at most three bonds apart.
    """

    names: list
    elements: list
    types: list
    residue_of: np.ndarray
    residues: list
    bonds: np.ndarray
    backbone: np.ndarray
    steps: list
    var_probs: np.ndarray
    var_step: np.ndarray
    stereocentres: list
    excluded: np.ndarray
    plans: list | None = None

    @property
    def n_atoms(self) -> int:
        return len(self.names)


def blueprint(sequence, templates: dict, geom: FFGeometry, temperature_K: float) -> ChainBlueprint:
    """Assemble a chain from residue templates and plan its growth.

    Parameters
    ----------
    sequence : list of aseimd.species.PolymerResidue
        Residues in chain order (head first).
    templates : dict
        Residue templates by name (:func:`aseimd.forcefield.loader.residue_templates`).
    geom : FFGeometry
    temperature_K : float
        Temperature of the torsion-state Boltzmann weights.
    """
    names, elements, types, res_of, bonds, backbone, stereo_spec = [], [], [], [], [], [], []
    residues = []
    prev_out = None
    for ri, pres in enumerate(sequence):
        tmpl = templates[pres.species]
        base = len(names)
        local = {}
        for a in tmpl.atoms:
            local[a.name] = len(names)
            names.append(a.name)
            elements.append(a.element)
            types.append(a.type)
            res_of.append(ri)
        bonds.extend((local[x], local[y]) for x, y in tmpl.bonds)
        bb = [local[n] for n in pres.backbone]
        if prev_out is not None:
            bonds.append((prev_out, bb[0]))
        backbone.extend(bb)
        prev_out = bb[-1]
        residues.append(pres.species)
        if pres.stereo is not None:
            stereo_spec.append((local[pres.stereo[0]], local[pres.stereo[1]]))
        del base
    n = len(names)
    bonds = np.array(bonds, dtype=np.int64).reshape(-1, 2)
    nbrs = [[] for _ in range(n)]
    for a, b in bonds:
        nbrs[a].append(int(b))
        nbrs[b].append(int(a))
    backbone = np.array(backbone, dtype=np.int64)
    bb_pos = {int(a): k for k, a in enumerate(backbone)}
    L = len(backbone)
    if L < 3:
        raise BuildError(f"chain backbone of {L} atoms is too short to grow (need at least 3)")
    res_of = np.array(res_of, dtype=np.int64)
    # growth steps: one per residue, plus one per rotatable side-chain level (placed and retried on
    # its own, so a long side chain is grown bond by bond rather than drawn all at once)
    steps: list[list] = []
    var_probs, var_step = [], []

    def begin() -> int:
        steps.append([])
        return len(steps) - 1
    kT = _R_KJ * temperature_K

    def new_var(step, quartet, side=False, x_offsets=()):
        d, g, p, x = quartet
        if side:
            # every torsion about the g-p bond: the other neighbours of g at +-120 degrees from d
            # (their order is a guess; it only matters when they differ in type), the siblings of x
            # at their planned offsets
            d_set = [(d, 0.0)] + [(y, o) for y, o in zip([z for z in nbrs[g] if z not in (p, d)],
                                                           (2 * math.pi / 3, -2 * math.pi / 3))]
            x_set = [(x, 0.0)] + list(x_offsets)
            e = np.array([sum(geom.torsion_energy_kJ((types[a], types[g], types[p], types[b]), phi + ob - oa)
                              for a, oa in d_set for b, ob in x_set)
                          for phi in (_TRANS, _GPLUS, _GMINUS)])
        else:
            e = np.array([geom.torsion_energy_kJ(tuple(types[q] for q in quartet), phi)
                          for phi in (_TRANS, _GPLUS, _GMINUS)])
        w = np.exp(-(e - e.min()) / kT)
        w = w / w.sum()
        # keep every state reachable (stiff PTFE backbones); side-chain weights rest on guessed
        # neighbour order, so a share of uniform weights is mixed in
        floor = SIDE_CHAIN_UNIFORM / 3 if side else GAUCHE_FLOOR
        w = (1.0 - 3 * floor) * w + floor
        var_probs.append(w / w.sum())
        var_step.append(step)
        return len(var_probs) - 1

    def r_of(a, b):
        return geom.bond_nm(types[a], types[b])

    def th_of(a, b, c):
        return geom.angle_rad(types[a], types[b], types[c])

    stereo_centre = {c: (s, k) for k, (c, s) in enumerate(stereo_spec)}
    stereocentres = []
    for c, s in stereo_spec:
        others = [x for x in nbrs[c] if x not in bb_pos and x != s]
        stereocentres.append((c, s, others[0] if others else -1))

    def subtree_size(x, parent):
        size, stack, seen = 0, [x], {parent}
        while stack:
            y = stack.pop()
            if y in seen:
                continue
            seen.add(y)
            size += 1
            stack.extend(z for z in nbrs[y] if z not in seen)
        return size

    def plan_subtree(step, p, g, d):
        """Children of side atom p (parent g, reference d) and recursively below."""
        kids = sorted((x for x in nbrs[p] if x != g), key=lambda x: -subtree_size(x, p))
        if not kids:
            return
        coord = len(nbrs[p])
        offsets = {4: (0.0, 2 * math.pi / 3, -2 * math.pi / 3), 3: (0.0, math.pi), 2: (0.0,)}.get(coord, (0.0,) * 4)
        main = kids[0]
        var = -1
        if len(nbrs[main]) > 1 and elements[main] != "H":
            step = begin()  # a rotatable level: its own step
            var = new_var(step, (d, g, p, main), side=True,
                          x_offsets=[(x, offsets[k % len(offsets)]) for k, x in enumerate(kids) if k > 0])
        # (a terminal group stays in the step of its parent atom)
        for k, x in enumerate(kids):
            steps[step].append((0, x, d, g, p, r_of(p, x), th_of(g, p, x), var, offsets[k % len(offsets)]))
        for x in kids:
            plan_subtree(step, x, p, g)

    def plan_side(step, k):
        """Side atoms of backbone position k (both backbone neighbours known, or an end)."""
        step = len(steps) - 1
        p = int(backbone[k])
        side = [x for x in nbrs[p] if x not in bb_pos]
        if not side:
            return
        if 0 < k < L - 1:
            a, b = int(backbone[k - 1]), int(backbone[k + 1])
            if len(side) == 1:
                steps[step].append((2, side[0], a, p, b, r_of(p, side[0])))
            else:
                if p in stereo_centre:
                    s, idx = stereo_centre[p]
                    order = [s] + [x for x in side if x != s]
                    signs = [("stereo", idx), ("antistereo", idx)]
                else:
                    order, signs = side, [("fixed", 1.0), ("fixed", -1.0)]
                for x, sg in zip(order[:2], signs):
                    steps[step].append((1, x, a, p, b, r_of(p, x), sg))
            refs = (a, b)
        else:
            g, d = (int(backbone[1]), int(backbone[2])) if k == 0 else (int(backbone[L - 2]), int(backbone[L - 3]))
            offsets = (math.pi / 3, math.pi, -math.pi / 3)
            for j, x in enumerate(side):
                steps[step].append((3, x, d, g, p, r_of(p, x), th_of(g, p, x), offsets[j % 3]))
            refs = (g, d)
        for x in side:
            plan_subtree(step, x, p, refs[0])

    for k in range(L):
        x = int(backbone[k])
        if k == 0 or res_of[x] != res_of[int(backbone[k - 1])]:
            begin()
        step = len(steps) - 1
        if k == 0:
            steps[step].append((10, x))
        elif k == 1:
            steps[step].append((11, x, int(backbone[0]), r_of(int(backbone[0]), x)))
        elif k == 2:
            b0, b1 = int(backbone[0]), int(backbone[1])
            steps[step].append((12, x, b0, b1, r_of(b1, x), th_of(b0, b1, x)))
        else:
            d, g, p = (int(backbone[k - 3]), int(backbone[k - 2]), int(backbone[k - 1]))
            var = new_var(step, (d, g, p, x))
            steps[step].append((0, x, d, g, p, r_of(p, x), th_of(g, p, x), var, 0.0))
        # side atoms of backbone k-1 now that k is placed (k-1 == 0 waits for backbone 2)
        if k >= 2:
            if k == 2:
                plan_side(len(steps) - 1, 0)
            plan_side(len(steps) - 1, k - 1)
    plan_side(len(steps) - 1, L - 1)

    placed = set()
    for st in steps:
        for op in st:
            placed.add(op[1])
    if len(placed) != n:
        missing = sorted(set(range(n)) - placed)
        raise BuildError(f"chain growth plan misses atoms {[names[i] for i in missing[:5]]} (template graph)")
    return ChainBlueprint(names, elements, types, res_of, residues, bonds, backbone, steps,
                          np.array(var_probs).reshape(-1, 3), np.array(var_step, dtype=np.int64),
                          stereocentres, _excluded_keys(bonds, n, GROWTH_EXEMPT_BONDS))


# ---------------------------------------------------------------------------------------
# vector helpers on plain floats (faster than numpy for single 3-vectors)
# ---------------------------------------------------------------------------------------

def _sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _unit(a):
    n = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    return (a[0] / n, a[1] / n, a[2] / n)


def nerf(a, b, c, r, theta, phi):
    """Place d with |cd| = r, angle(b, c, d) = theta, dihedral(a, b, c, d) = phi (IUPAC sign)."""
    bc = _unit(_sub(c, b))
    nrm = _unit(_cross(_sub(b, a), bc))
    m = _cross(nrm, bc)
    x, y, z = -r * math.cos(theta), r * math.sin(theta) * math.cos(phi), r * math.sin(theta) * math.sin(phi)
    return (c[0] + x * bc[0] + y * m[0] + z * nrm[0],
            c[1] + x * bc[1] + y * m[1] + z * nrm[1],
            c[2] + x * bc[2] + y * m[2] + z * nrm[2])


_TET_HALF = math.radians(109.47) / 2


def tetra(a, p, b, r, sign):
    """A substituent of sp3 centre p with backbone neighbours a and b, on the ``sign`` side of plane a-p-b."""
    ua, ub = _unit(_sub(a, p)), _unit(_sub(b, p))
    bis = _unit((ua[0] + ub[0], ua[1] + ub[1], ua[2] + ub[2]))
    nrm = _unit(_cross(ua, ub))
    cb, sb = math.cos(_TET_HALF), math.sin(_TET_HALF) * sign
    return (p[0] + r * (-cb * bis[0] + sb * nrm[0]),
            p[1] + r * (-cb * bis[1] + sb * nrm[1]),
            p[2] + r * (-cb * bis[2] + sb * nrm[2]))


def dihedral(a, b, c, d) -> float:
    """Dihedral angle a-b-c-d in rad (IUPAC sign)."""
    b0, b1, b2 = np.subtract(a, b), np.subtract(c, b), np.subtract(d, c)
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    return float(math.atan2(np.dot(np.cross(b1n, v), w), np.dot(v, w)))


# ---------------------------------------------------------------------------------------
# growth grid (fixed-capacity cell list that atoms are added to as they are placed)
# ---------------------------------------------------------------------------------------

class GrowthGrid:
    """Cells of width >= ``cell_nm`` holding the indices of placed atoms.

    x and y are periodic; z is periodic when ``periodic_z`` (bulk box), else the
    grid spans ``[z_lo, z_hi]`` (a layer).
    """

    def __init__(self, box_nm, cell_nm: float, n_atoms: int, periodic_z: bool, z_lo: float = 0.0,
                 z_hi: float | None = None, capacity: int = 8):
        self.box = np.asarray(box_nm, dtype=float)
        self.periodic_z = periodic_z
        self.z_lo = 0.0 if periodic_z else z_lo
        zspan = self.box[2] if periodic_z else (z_hi - z_lo)
        self.span = np.array([self.box[0], self.box[1], zspan])
        self.n = np.maximum(1, np.floor(self.span / cell_nm).astype(int))
        # one extra, always empty row: the "cell" beyond a non-periodic edge
        self.cells = np.full((int(np.prod(self.n)) + 1, capacity), -1, dtype=np.int64)
        self.count = np.zeros(int(np.prod(self.n)), dtype=np.int64)
        self.pos = np.zeros((n_atoms, 3))
        self.placed = np.zeros(n_atoms, dtype=bool)
        self.atom_cell = np.zeros(n_atoms, dtype=np.int64)
        self.atom_slot = np.zeros(n_atoms, dtype=np.int64)
        self.per = np.array([True, True, periodic_z])
        off = []
        axes = [sorted({-1 % k, 0, 1 % k}) if k < 3 and p else [-1, 0, 1] for k, p in zip(self.n, self.per)]
        for a in axes[0]:
            for b in axes[1]:
                for c in axes[2]:
                    off.append((a, b, c))
        self.offsets = np.array(off)
        # the neighbour cells of every cell, flat (the empty row beyond a non-periodic edge)
        allc = np.stack(np.meshgrid(*[np.arange(k) for k in self.n], indexing="ij"), axis=-1).reshape(-1, 3)
        c = allc[:, None, :] + self.offsets[None]
        inside = np.ones(c.shape[:2], dtype=bool)
        for ax in range(3):
            if self.per[ax]:
                c[..., ax] %= self.n[ax]
            else:
                inside &= (c[..., ax] >= 0) & (c[..., ax] < self.n[ax])
        self.nbr_cells = np.where(inside, self._flat(np.clip(c, 0, self.n - 1)), int(np.prod(self.n)))

    def _cell_of(self, xyz: np.ndarray) -> np.ndarray:
        rel = xyz - np.array([0.0, 0.0, self.z_lo])
        frac = np.where(self.per, np.mod(rel, self.span), rel) / self.span
        c = np.floor(frac * self.n).astype(int)
        return np.clip(c, 0, self.n - 1)

    def _flat(self, c: np.ndarray) -> np.ndarray:
        return (c[..., 0] * self.n[1] + c[..., 1]) * self.n[2] + c[..., 2]

    def add(self, idx: np.ndarray, xyz: np.ndarray) -> None:
        self.pos[idx] = xyz
        self.placed[idx] = True
        for i, f in zip(idx.tolist(), self._flat(self._cell_of(xyz)).tolist()):
            k = self.count[f]
            if k == self.cells.shape[1]:
                self.cells = np.concatenate([self.cells, np.full_like(self.cells, -1)], axis=1)
            self.cells[f, k] = i
            self.count[f] = k + 1
            self.atom_cell[i] = f
            self.atom_slot[i] = k

    def remove(self, idx: np.ndarray) -> None:
        for i in idx.tolist():
            if not self.placed[i]:
                continue
            f, k = self.atom_cell[i], self.atom_slot[i]
            last = self.count[f] - 1
            moved = self.cells[f, last]
            self.cells[f, k] = moved
            self.atom_slot[moved] = k
            self.cells[f, last] = -1
            self.count[f] = last
            self.placed[i] = False

    def neighbours(self, xyz: np.ndarray):
        """Placed atoms in the 27 cells around each point: (point index, atom index, distance in nm)."""
        cand = self.cells[self.nbr_cells[self._flat(self._cell_of(xyz))]].reshape(len(xyz), -1)
        pi, slot = np.nonzero(cand >= 0)
        j = cand[pi, slot]
        d = self.pos[j] - xyz[pi]
        d = np.where(self.per, d - self.box * np.round(d / self.box), d)
        return pi, j, np.sqrt(np.einsum("ij,ij->i", d, d))


# ---------------------------------------------------------------------------------------
# the walk
# ---------------------------------------------------------------------------------------

@dataclass
class GrowthRegion:
    """Where chains are grown: box (nm), z periodic or confined to [z_lo, z_hi] (nm)."""

    box_nm: np.ndarray
    periodic_z: bool
    z_lo: float = 0.0
    z_hi: float = 0.0


class ChainGrower:
    """Grow chains one after another into a shared grid.

    Parameters
    ----------
    region : GrowthRegion
    n_atoms_total : int
        Atoms of all chains (and ions) that will be placed.
    rng : numpy.random.Generator
    overlap_scale : float
        Factor on the contact radii.
    quick_draws : int
        Candidates drawn from the torsion weights (first fit taken) before all states of a step are tried.
    max_backtracks, max_restarts : int
        Back-ups per chain try, tries per chain.
    """

    def __init__(self, region: GrowthRegion, n_atoms_total: int, rng, *, overlap_scale: float = 0.85,
                 quick_draws: int = QUICK_DRAWS, max_backtracks: int = 60, max_restarts: int = 8):
        self.region = region
        self.rng = rng
        self.scale = overlap_scale
        rmax = 2 * GROWTH_RADIUS_HEAVY_NM * overlap_scale
        self.grid = GrowthGrid(region.box_nm, max(rmax, 0.3), n_atoms_total, region.periodic_z,
                               region.z_lo, region.z_hi)
        self.radius = np.zeros(n_atoms_total)
        self.quick_draws, self.max_backtracks, self.max_restarts = int(quick_draws), max_backtracks, max_restarts
        self.stats = {"attempts": 0, "full_evaluations": 0, "candidates": 0, "backtracks": 0, "restarts": 0}
        self.last_signs = np.zeros(0, dtype=int)

    def _fits(self, gidx: np.ndarray, xyz: np.ndarray, offset: int, bp: ChainBlueprint | None,
              intra: bool = True) -> bool:
        """True if the new atoms overlap nothing placed (and, with ``intra``, not each other)."""
        reg = self.region
        if not reg.periodic_z and (np.any(xyz[:, 2] < reg.z_lo) or np.any(xyz[:, 2] > reg.z_hi)):
            return False
        pi, j, d = self.grid.neighbours(xyz)
        # new atoms among themselves (the step's atoms are not in the grid yet)
        if intra and len(gidx) > 1:
            dd = xyz[:, None, :] - xyz[None, :, :]
            dist = np.sqrt(np.einsum("ijk,ijk->ij", dd, dd))  # within one residue: no image needed
            a, b = _triu(len(gidx))
            pi = np.concatenate([pi, a])
            j = np.concatenate([j, gidx[b]])
            d = np.concatenate([d, dist[a, b]])
        if len(j) == 0:
            return True
        gi = gidx[pi]
        lim = (self.radius[gi] + self.radius[j]) * self.scale
        close = d < lim
        if not np.any(close):
            return True
        if bp is None:
            return False
        gi, j = gi[close], j[close]
        same = (j >= offset) & (j < offset + bp.n_atoms)
        if not np.all(same):
            return False
        li, lj = gi - offset, j - offset
        key = np.minimum(li, lj).astype(np.int64) * bp.n_atoms + np.maximum(li, lj)
        k = np.searchsorted(bp.excluded, key)
        hit = (k < len(bp.excluded)) & (bp.excluded[np.minimum(k, len(bp.excluded) - 1)] == key)
        return bool(np.all(hit))

    def grow(self, bp: ChainBlueprint, offset: int, stereo_signs: np.ndarray,
             free_stereo: bool = False) -> np.ndarray:
        """Grow one chain; its atoms get global indices ``offset + local``.

        Every step first tries a few candidate placements drawn from the torsion
        weights (the first that fits is taken: rejection sampling); if none fits,
        all torsion states of the step (times a few jitters, times both
        configurations of a free stereocentre) are placed at once, checked in one
        vectorised cell-list query, and one of those that fit is chosen with
        probability proportional to its force-field weight.  Either way a fitting
        state is chosen with probability ``w_i / sum(w_fitting)`` (a Rosenbluth
        choice); with no fitting candidate the walk backs up.

        Parameters
        ----------
        bp : ChainBlueprint
        offset : int
        stereo_signs : numpy.ndarray, shape=(n_stereocentres,), dtype=int
            Requested configuration of each stereocentre (+1 / -1).
        free_stereo : bool
            Atactic chains: each configuration is a candidate (weight 1/2 each) rather than
            fixed, so a crowded stereocentre can take the one that fits; the signs actually
            built are in :attr:`last_signs`.

        Returns
        -------
        numpy.ndarray, shape=(n_atoms, 3)
            Positions in nm (unwrapped: the chain is whole).
        """
        for a, el in enumerate(bp.elements):
            self.radius[offset + a] = GROWTH_RADIUS_NM.get(el, GROWTH_RADIUS_HEAVY_NM)
        plan = _step_plans(bp)
        n_steps = len(plan)
        rng = self.rng
        for _restart in range(self.max_restarts):
            pos = [None] * bp.n_atoms  # chain-local positions as 3-tuples (scalar NeRF is faster)
            tors = np.zeros(len(bp.var_probs))
            signs = np.array(stereo_signs, dtype=int).copy()
            step, backtracks = 0, 0
            uniform = np.zeros(n_steps, dtype=bool)  # a step backed into may draw all states equally
            depth, fail_at = 0, -1
            frame = None  # start frame (direction, reference point) of the chain's chosen first step
            while step < n_steps:
                sp = plan[step]
                flat = uniform[step] and rng.random() < BACKTRACK_UNIFORM
                self.stats["attempts"] += 1
                # stage 1: a few draws from the weights, the first that fits is taken
                hit = ()
                if self.quick_draws > 0 and step > 0:
                    states = _draw_states(rng, sp, bp, self.quick_draws, flat)
                    st_signs = rng.choice(np.array([1, -1]), size=(self.quick_draws, len(sp.stereo))) \
                        if free_stereo and len(sp.stereo) else None
                    cands = self._try(bp, sp, offset, pos, tors, signs, states, st_signs, frame)
                    hit = np.flatnonzero(cands.ok)
                if step == 0:
                    # the chain's start: of many random starts that fit, the least crowded one
                    # (the start is not a torsion: choosing it biases no torsion statistics)
                    states, w, st_signs = _all_states(rng, sp, bp, free_stereo, flat)
                    cands = self._try(bp, sp, offset, pos, tors, signs, states, st_signs, frame)
                    ci = -1
                    if np.any(cands.ok):
                        pi, _j, dist = self.grid.neighbours(cands.xyz[:, 0])
                        crowd = np.bincount(pi[dist < START_PROBE_NM], minlength=len(cands.ok)).astype(float)
                        crowd[~cands.ok] = np.inf
                        ci = int(rng.choice(np.flatnonzero(crowd == crowd.min())))
                elif len(hit):
                    ci = int(hit[0])
                else:
                    # stage 2: every state at once, Rosenbluth choice among those that fit
                    self.stats["full_evaluations"] += 1
                    states, w, st_signs = _all_states(rng, sp, bp, free_stereo, flat)
                    cands = self._try(bp, sp, offset, pos, tors, signs, states, st_signs, frame)
                    ci = rosenbluth_choice(rng, w, cands.ok)
                if ci >= 0:
                    self.stats["candidates"] += len(cands.ok)
                    for i, v in zip(sp.atom_list, cands.lists[ci]):
                        pos[i] = v
                    if len(sp.vars):
                        tors[sp.vars] = states[ci]
                    if st_signs is not None:
                        signs[sp.stereo] = st_signs[ci]
                    self.grid.add(offset + sp.atoms, cands.xyz[ci])
                    if sp.index == 0:  # the start frame of the chosen candidate (later steps may use it)
                        frame = cands.frames[ci]
                    step += 1
                    continue
                backtracks += 1
                self.stats["backtracks"] += 1
                if backtracks > max(self.max_backtracks, BACKTRACKS_PER_STEP * n_steps):
                    break
                # back up one step, or further when the walk keeps failing at the same place
                cap = MAX_BACKTRACK_DEPTH if _restart < SHALLOW_TRIES else MAX_BACKTRACK_DEPTH_LATE
                depth = min(depth + 1, cap) if step <= fail_at else 1
                fail_at = step
                for _ in range(min(depth, step)):
                    step -= 1
                    uniform[step] = True
                    self.grid.remove(offset + plan[step].atoms)
            else:
                self.last_signs = signs
                return np.array(pos)
            self.stats["restarts"] += 1
            for s in range(n_steps):
                self.grid.remove(offset + plan[s].atoms)
        raise BuildError(
            f"could not grow a {bp.n_atoms}-atom chain without overlaps after {self.max_restarts} tries; "
            f"the layer/box is too thin or too crowded for these chains: use fewer or shorter chains, "
            f"a thicker layer or a lower density")

    def _try(self, bp, sp, offset, pos, tors, signs, tors_c, signs_c, frame) -> _Candidates:
        """Place candidates (torsions ``tors_c`` (C, k), free signs ``signs_c``) and check them.

        ``frame`` is the chain's start frame (None before its first step is placed).  Returns the
        candidates' positions and start frames and which of them fit (:class:`_Candidates`).
        """
        lists, frames = self._place_candidates(bp, sp, pos, tors, signs, tors_c, signs_c, frame)
        xyz = np.array(lists).reshape(len(lists), len(sp.atom_list), 3)
        C, m = xyz.shape[:2]
        ok = np.ones(C, dtype=bool)
        reg = self.region
        if not reg.periodic_z:
            z = xyz[..., 2]
            ok &= ~np.any((z < reg.z_lo) | (z > reg.z_hi), axis=1)
        if len(sp.pair_a):  # the step's own atoms among themselves
            d = xyz[:, sp.pair_a] - xyz[:, sp.pair_b]
            ok &= ~np.any(np.einsum("cpk,cpk->cp", d, d) < (sp.pair_lim * self.scale) ** 2, axis=1)
        flat = xyz.reshape(-1, 3)
        pi, j, dist = self.grid.neighbours(flat)
        if len(j):
            gi = offset + sp.atoms[pi % m]
            close = dist < (self.radius[gi] + self.radius[j]) * self.scale
            if np.any(close):
                pi, gi, j = pi[close], gi[close], j[close]
                same = (j >= offset) & (j < offset + bp.n_atoms)
                bad = ~same
                if np.any(same):
                    li, lj = gi[same] - offset, j[same] - offset
                    key = np.minimum(li, lj).astype(np.int64) * bp.n_atoms + np.maximum(li, lj)
                    k = np.searchsorted(bp.excluded, key)
                    hit = (k < len(bp.excluded)) & (bp.excluded[np.minimum(k, len(bp.excluded) - 1)] == key)
                    bad[same] = ~hit
                ok &= np.bincount(pi[bad] // m, minlength=C) == 0
        return _Candidates(xyz, ok, lists, frames)

    def _place_candidates(self, bp, sp, pos, tors, signs, tors_c, signs_c, frame) -> tuple[list, list]:
        """Positions of the step's atoms for every candidate, and each candidate's start frame.

        Returns a list (candidates) of lists of 3-tuples, and a list (candidates) of start frames:
        the one a candidate of the chain's first step draws (its first atom's position starts a
        random direction and reference point), else ``frame``, the chain's.  Plain-float NeRF per
        candidate: a step places a handful of atoms, where numpy's per-call overhead would cost
        more than the arithmetic.
        """
        rng = self.rng
        reg = self.region
        ops = bp.steps[sp.index]
        tc = tors_c.tolist()
        sc = signs_c.tolist() if signs_c is not None else None
        out = []
        frames = []
        for c in range(len(tc)):
            row = tc[c]
            new = {}
            cframe = frame

            def at(i):
                return new[i] if i in new else pos[i]

            for op in ops:
                kind, x = op[0], op[1]
                if kind == 0:
                    _, _, d, g, p, r, th, var, off = op
                    if var < 0:
                        phi = math.pi
                    else:
                        col = sp.var_col.get(var)
                        phi = row[col] if col is not None else tors[var]
                    new[x] = nerf(at(d), at(g), at(p), r, th, phi + off)
                elif kind == 1:
                    _, _, a, p, b, r, (how, val) = op
                    if how == "fixed":
                        sign = val
                    else:
                        col = sp.stereo_col.get(val) if sc is not None else None
                        sign = sc[c][col] if col is not None else signs[val]
                        if how == "antistereo":
                            sign = -sign
                    new[x] = tetra(at(a), at(p), at(b), r, sign)
                elif kind == 2:
                    _, _, a, p, b, r = op
                    pp = at(p)
                    ua, ub = _unit(_sub(at(a), pp)), _unit(_sub(at(b), pp))
                    bis = _unit((ua[0] + ub[0], ua[1] + ub[1], ua[2] + ub[2]))
                    new[x] = (pp[0] - r * bis[0], pp[1] - r * bis[1], pp[2] - r * bis[2])
                elif kind == 3:
                    _, _, d, g, p, r, th, off = op
                    new[x] = nerf(at(d), at(g), at(p), r, th, off)
                elif kind == 10:
                    lo = reg.z_lo + 0.15 if not reg.periodic_z else 0.0
                    hi = reg.z_hi - 0.15 if not reg.periodic_z else reg.box_nm[2]
                    u = rng.random(3)
                    p0 = (u[0] * reg.box_nm[0], u[1] * reg.box_nm[1], lo + u[2] * max(hi - lo, 0.0))
                    new[x] = p0
                    v, w = rng.normal(size=3), rng.normal(size=3)
                    cframe = (tuple(v / np.linalg.norm(v)), (p0[0] + w[0], p0[1] + w[1], p0[2] + w[2]))
                elif kind == 11:
                    _, _, b0, r = op
                    u = cframe[0]
                    if not reg.periodic_z:  # start roughly parallel to the layer
                        u = _unit((u[0], u[1], 0.3 * u[2]))
                    q = at(b0)
                    new[x] = (q[0] + r * u[0], q[1] + r * u[1], q[2] + r * u[2])
                elif kind == 12:
                    _, _, b0, b1, r, th = op
                    new[x] = nerf(cframe[1], at(b0), at(b1), r, th, rng.random() * 2 * math.pi)
            out.append([new[i] for i in sp.atom_list])
            frames.append(cframe)
        return out, frames

    def place_rigid(self, elements, xyz_local: np.ndarray, offset: int, max_tries: int = 500) -> np.ndarray:
        """Insert a rigid molecule (ion) at a random position and orientation that overlaps nothing."""
        n = len(elements)
        for a, el in enumerate(elements):
            self.radius[offset + a] = GROWTH_RADIUS_NM.get(el, 0.12)
        reg = self.region
        idx = offset + np.arange(n)
        centred = xyz_local - xyz_local.mean(axis=0)
        for _ in range(max_tries):
            q = _random_rotation(self.rng)
            lo = reg.z_lo + 0.2 if not reg.periodic_z else 0.0
            hi = reg.z_hi - 0.2 if not reg.periodic_z else reg.box_nm[2]
            c = np.array([self.rng.random() * reg.box_nm[0], self.rng.random() * reg.box_nm[1],
                          lo + self.rng.random() * (hi - lo)])
            xyz = centred @ q.T + c
            if self._fits(idx, xyz, offset, None, intra=False):  # a rigid molecule: its own geometry is fine
                self.grid.add(idx, xyz)
                return xyz
        raise BuildError(f"could not insert a {n}-atom ion without overlaps after {max_tries} tries; "
                         f"lower the salt concentration or the density")

    def place_near(self, element: str, centre: np.ndarray, offset: int, r_min: float, r_max: float,
                   max_tries: int = 400) -> np.ndarray:
        """Insert one atom (a counter-ion) at r_min..r_max nm from ``centre`` where it overlaps nothing."""
        self.radius[offset] = GROWTH_RADIUS_NM.get(element, 0.10)
        idx = np.array([offset])
        for _ in range(max_tries):
            v = self.rng.normal(size=3)
            xyz = (centre + v / np.linalg.norm(v) * (r_min + self.rng.random() * (r_max - r_min)))[None]
            if self._fits(idx, xyz, offset, None):
                self.grid.add(idx, xyz)
                return xyz[0]
        raise BuildError(f"could not place a counter-ion {element} near its group without overlaps")


# ---------------------------------------------------------------------------------------
# candidate placements of one growth step (vectorised over candidates)
# ---------------------------------------------------------------------------------------

class _Candidates(NamedTuple):
    """Candidate placements of one growth step (:meth:`ChainGrower._try`)."""

    xyz: np.ndarray   # positions, shape=(C, n_step_atoms, 3), nm
    ok: np.ndarray    # which fit, shape=(C,), bool
    lists: list       # the same positions as lists of 3-tuples (what the walk stores)
    frames: list      # each candidate's chain start frame (direction, reference point), or None


@dataclass
class _StepPlan:
    """What one growth step places and which choices it has (cached on the blueprint)."""

    index: int
    atoms: np.ndarray           # chain-local atoms placed by the step
    atom_list: list             # the same, as a list
    vars: np.ndarray            # torsion variables drawn in the step
    var_col: dict               # variable -> column in the candidate torsion array
    stereo: np.ndarray          # stereocentres whose substituents the step places
    stereo_col: dict            # stereocentre -> column in the candidate sign array
    pair_a: np.ndarray          # the step's atom pairs (positions in ``atoms``) more than
    pair_b: np.ndarray          # GROWTH_EXEMPT_BONDS bonds apart, checked among themselves,
    pair_lim: np.ndarray        # and their contact distance (before overlap_scale), nm
    enum_states: np.ndarray | None  # every state combination (n_comb, k), or None if too many
    enum_w: np.ndarray | None       # force-field weight of each combination


def _step_plans(bp: ChainBlueprint) -> list:
    if bp.plans is not None:
        return bp.plans
    radius = np.array([GROWTH_RADIUS_NM.get(e, GROWTH_RADIUS_HEAVY_NM) for e in bp.elements])
    plans = []
    for s, ops in enumerate(bp.steps):
        atoms = np.array([op[1] for op in ops], dtype=np.int64)
        vs = np.flatnonzero(bp.var_step == s)
        stereo = sorted({op[6][1] for op in ops if op[0] == 1 and op[6][0] in ("stereo", "antistereo")})
        a, b = np.triu_indices(len(atoms), 1)
        la, lb = atoms[a], atoms[b]
        key = np.minimum(la, lb) * bp.n_atoms + np.maximum(la, lb)
        k = np.searchsorted(bp.excluded, key)
        excl = (k < len(bp.excluded)) & (bp.excluded[np.minimum(k, len(bp.excluded) - 1)] == key)
        a, b = a[~excl], b[~excl]
        enum_states = enum_w = None
        if 3 ** len(vs) <= ENUMERATE_MAX_STATES:
            enum_states = np.array(list(itertools.product(range(3), repeat=len(vs))), dtype=np.int64)
            enum_states = enum_states.reshape(max(len(enum_states), 1), len(vs))
            enum_w = np.prod(bp.var_probs[vs[None, :], enum_states], axis=1) if len(vs) else np.ones(1)
        plans.append(_StepPlan(s, atoms, atoms.tolist(), vs, {int(v): c for c, v in enumerate(vs)}, np.array(stereo, dtype=np.int64),
                               {int(v): c for c, v in enumerate(stereo)}, a, b, radius[atoms[a]] + radius[atoms[b]],
                               enum_states, enum_w))
    bp.plans = plans
    return plans


_STATE_ANGLES = np.array([_TRANS, _GPLUS, _GMINUS])
_JITTER_RAD = math.radians(10.0)


def _angles(rng, states: np.ndarray) -> np.ndarray:
    """Torsion angles of states (0 trans, 1 gauche+, 2 gauche-) with Gaussian jitter, rad."""
    return _STATE_ANGLES[states] + rng.normal(0.0, _JITTER_RAD, states.shape)


def _draw_states(rng, sp: _StepPlan, bp: ChainBlueprint, n: int, flat: bool) -> np.ndarray:
    """``n`` candidate torsion sets drawn from the weights (or uniformly), angles in rad, shape (n, k)."""
    k = len(sp.vars)
    u = rng.random((n, k))
    if flat:
        states = (u * 3).astype(np.int64)
    else:
        cum = np.cumsum(bp.var_probs[sp.vars], axis=1)  # (k, 3)
        states = (u[:, :, None] > cum[None]).sum(axis=2)
    return _angles(rng, np.minimum(states, 2))


def _all_states(rng, sp: _StepPlan, bp: ChainBlueprint, free_stereo: bool, flat: bool):
    """Every state combination of a step (times jitter copies and free stereo signs).

    Returns (angles (C, k), weights (C,), signs (C, n_stereo) or None).  With too many
    combinations, :data:`GROWTH_CANDIDATES` draws from the weights with equal weights.
    """
    n_st = len(sp.stereo) if free_stereo else 0
    if sp.enum_states is None:
        states = _draw_states(rng, sp, bp, GROWTH_CANDIDATES, flat)
        w = np.ones(len(states))
        sg = rng.choice(np.array([1, -1]), size=(len(states), n_st)) if n_st else None
        return states, w, sg
    comb = sp.enum_states
    w = np.ones(len(comb)) if flat else sp.enum_w
    if n_st:
        signs = np.array(list(itertools.product((1, -1), repeat=n_st)), dtype=int)
        comb = np.repeat(comb, len(signs), axis=0)
        w = np.repeat(w, len(signs))
        sg = np.tile(signs, (len(sp.enum_states), 1))
    else:
        sg = None
    reps = max(1, GROWTH_CANDIDATES // len(comb))
    if reps > 1:
        comb, w = np.tile(comb, (reps, 1)), np.tile(w, reps)
        sg = np.tile(sg, (reps, 1)) if sg is not None else None
    return _angles(rng, comb), w, sg


def rosenbluth_choice(rng, w: np.ndarray, ok: np.ndarray) -> int:
    """Index of one fitting candidate, chosen with probability ``w_i / sum(w[ok])``; -1 if none fits."""
    p = np.where(ok, w, 0.0)
    total = p.sum()
    if not total > 0:
        return -1
    return min(int(np.searchsorted(np.cumsum(p), rng.random() * total, side="right")), len(p) - 1)


_TRIU: dict = {}


def _triu(n: int):
    if n not in _TRIU:
        _TRIU[n] = np.triu_indices(n, 1)
    return _TRIU[n]


def _random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]])


def stereo_signs_measured(bp: ChainBlueprint, xyz: np.ndarray, box_nm=None) -> np.ndarray:
    """Configuration sign of each stereocentre from coordinates.

    The sign of det[(prev - c), (next - c), (substituent - c)] with prev/next the
    backbone neighbours of centre c; equal consecutive signs are a meso dyad.

    Returns
    -------
    numpy.ndarray, shape=(n_stereocentres,), dtype=int
        +1 / -1 per centre in chain order.
    """
    bb = list(bp.backbone)
    out = []
    for c, s, _ in bp.stereocentres:
        k = bb.index(c)
        prev, nxt = bb[k - 1], bb[k + 1]
        vs = [xyz[prev] - xyz[c], xyz[nxt] - xyz[c], xyz[s] - xyz[c]]
        if box_nm is not None:
            box = np.asarray(box_nm)
            vs = [v - box * np.round(v / box) for v in vs]
        out.append(1 if np.linalg.det(np.array(vs)) > 0 else -1)
    return np.array(out, dtype=int)
