"""Cell list against brute force; close contacts; a bond spearing an EC ring."""

from __future__ import annotations

import numpy as np
import pytest

from aseimd.build.geometry import CellList, closest_nonbonded_pair, min_nonbonded_distance_nm, speared_rings


@pytest.mark.parametrize("box,periodic", [((3.0, 3.0, 3.0), (True, True, True)),
                                          ((2.0, 1.5, 4.0), (True, True, False)),
                                          ((0.9, 3.0, 3.0), (True, True, True))])
def test_cell_list_pairs_equal_brute_force(box, periodic):
    rng = np.random.default_rng(1)
    box = np.array(box)
    pos = rng.random((300, 3)) * box
    pos[:7] -= 0.4 * box  # some atoms outside the box
    i, j, d = CellList(pos, box, 0.35, periodic).pairs()
    dd = pos[None] - pos[:, None]
    per = np.array(periodic)
    dd = np.where(per, dd - box * np.round(dd / box), dd)
    dist = np.linalg.norm(dd, axis=2)
    bi, bj = np.nonzero(np.triu(dist < 0.35, 1))
    assert set(zip(i.tolist(), j.tolist())) == set(zip(bi.tolist(), bj.tolist()))
    assert np.allclose(np.sort(d), np.sort(dist[bi, bj]))


def _ec_plus_bond(through: bool):
    from openmm import app

    from aseimd.build.molecule import molecule

    ec = molecule("EC")
    top = app.Topology()
    chain = top.addChain()
    res = top.addResidue("EC", chain)
    atoms = [top.addAtom(a.name, a.element, res) for a in ec.topology.atoms()]
    for b in ec.topology.bonds():
        top.addBond(atoms[b.atom1.index], atoms[b.atom2.index])
    ring = [a.index for a in ec.topology.atoms() if a.name in ("C1", "O2", "C2", "C3", "O3")]
    c = ec.positions_nm[ring].mean(axis=0)
    n = np.cross(ec.positions_nm[ring[1]] - c, ec.positions_nm[ring[2]] - c)
    n /= np.linalg.norm(n)
    shift = np.zeros(3) if through else np.array([0.6, 0.0, 0.0])
    # a free C-C "bond" perpendicular to the ring, its midpoint at the ring centre (or beside it)
    res2 = top.addResidue("XX", chain)
    x1 = top.addAtom("C1", app.element.carbon, res2)
    x2 = top.addAtom("C2", app.element.carbon, res2)
    top.addBond(x1, x2)
    pos = np.vstack([ec.positions_nm, c + shift + 0.076 * n, c + shift - 0.076 * n]) + 1.0
    return top, pos


def test_speared_ring_found_and_not_found():
    top, pos = _ec_plus_bond(True)
    hits = speared_rings(top, pos, (3.0, 3.0, 3.0))
    assert len(hits) == 1 and len(hits[0].ring) == 5 and set(hits[0].bond) == {10, 11}
    top, pos = _ec_plus_bond(False)
    assert speared_rings(top, pos, (3.0, 3.0, 3.0)) == []


def test_speared_ring_across_the_periodic_boundary():
    top, pos = _ec_plus_bond(True)
    pos = pos - 1.0 - pos[:10].mean(axis=0)  # ring centred on the box corner: atoms on both sides
    assert len(speared_rings(top, np.mod(pos, 3.0), (3.0, 3.0, 3.0))) == 1


def test_min_nonbonded_distance_skips_bonded_pairs():
    top, pos = _ec_plus_bond(True)
    d = min_nonbonded_distance_nm(top, pos, (3.0, 3.0, 3.0))
    pair = closest_nonbonded_pair(top, pos, (3.0, 3.0, 3.0))
    assert d < 0.2 and {pair.i, pair.j} & {10, 11}  # the spearing atoms sit inside the ring
