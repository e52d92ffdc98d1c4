"""benchmarks/polymer_densities.py: drift test, 1-4 pair search and the 1-4 rescaling diagnostic."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from benchmark_module import loaded_benchmark


@pytest.fixture(scope="module")
def bench():
    with loaded_benchmark("polymer_densities.py", "polymer_densities_bench") as module:
        yield module


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi ** 2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def test_drift_test_flags_a_trend_and_passes_stationary_series_at_the_1_sigma_rate(bench):
    # stationary AR(1): |drift| <= SE_drift for about 68 % of series (1-sigma test)
    ok = [bench.drift_test(1.0 + 0.01 * _ar1(0.7, 2000, s), 0.4)["converged"] for s in range(60)]
    assert 0.5 <= np.mean(ok) <= 0.85
    # the same series with a trend of 10 x its block SE across the window: never "converged"
    for s in range(10):
        x = 1.0 + 0.01 * _ar1(0.7, 2000, 100 + s)
        r0 = bench.drift_test(x, 0.4)
        trend = np.linspace(0.0, 10 * r0["se"] * 2, len(x))
        r = bench.drift_test(x + trend, 0.4)
        assert not r["converged"]
        assert r["drift"] == pytest.approx(r0["drift"] + 10 * r0["se"], rel=0.05)


def test_drift_test_without_enough_samples_is_not_converged(bench):
    r = bench.drift_test(np.ones(5), 0.4)
    assert r["se"] is None and r["converged"] is False


def _chain_topology(name: str, n_repeat: int):
    from openmm import app

    from aseimd.build.chain_growth import blueprint
    from aseimd.build.ffgeometry import ff_geometry
    from aseimd.build.polymer import PolymerSpec, chain_sequence
    from aseimd.forcefield.loader import residue_templates

    seq = chain_sequence(PolymerSpec(name, n_repeat=n_repeat), np.random.default_rng(0))
    bp = blueprint(seq, residue_templates(), ff_geometry(), 300.0)
    top = app.Topology()
    chain = top.addChain()
    res = [top.addResidue(r, chain) for r in bp.residues]
    atoms = [top.addAtom(bp.names[a], app.Element.getBySymbol(bp.elements[a]), res[bp.residue_of[a]])
             for a in range(bp.n_atoms)]
    for a, b in bp.bonds:
        top.addBond(atoms[int(a)], atoms[int(b)])
    return top


def _pairs_at_distance_3(top) -> set:
    """Slow obvious version: breadth-first shortest path lengths from every atom."""
    n = top.getNumAtoms()
    nbr = [[] for _ in range(n)]
    for b in top.bonds():
        nbr[b[0].index].append(b[1].index)
        nbr[b[1].index].append(b[0].index)
    out = set()
    for s in range(n):
        dist = {s: 0}
        q = deque([s])
        while q:
            u = q.popleft()
            for v in nbr[u]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    q.append(v)
        out.update((min(s, t), max(s, t)) for t, d in dist.items() if d == 3)
    return out


@pytest.mark.parametrize("name", ["PDMS", "PAN"])
def test_one_four_pairs_match_breadth_first_search(bench, name):
    top = _chain_topology(name, 3)
    assert bench.one_four_pairs(top) == _pairs_at_distance_3(top)


def test_rescale_14_doubles_exactly_the_1_4_terms(bench):
    import openmm

    from aseimd.forcefield import create_system

    top = _chain_topology("PDMS", 2)
    pairs = _pairs_at_distance_3(top)

    def terms(system):
        nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
        lj14 = next(f for f in system.getForces() if isinstance(f, openmm.CustomBondForce) and f.getName() == "LJ14")
        exc = {}
        for k in range(nb.getNumExceptions()):
            i, j, qq, _, _ = nb.getExceptionParameters(k)
            exc[(min(i, j), max(i, j))] = qq.value_in_unit(openmm.unit.elementary_charge ** 2)
        lj = {}
        for k in range(lj14.getNumBonds()):
            i, j, (_, eps) = lj14.getBondParameters(k)
            lj[(min(i, j), max(i, j))] = eps
        return exc, lj

    base = create_system(top)
    exc0, lj0 = terms(base)
    changed = create_system(top)
    n = bench.rescale_14(changed, top, 1.0)
    exc1, lj1 = terms(changed)
    assert n == len(pairs) > 0
    assert set(lj0) == pairs   # every 1-4 pair has a scaled LJ term, nothing else
    for p, q0 in exc0.items():
        assert exc1[p] == pytest.approx(2 * q0 if p in pairs else q0, abs=1e-12)
    for p, e0 in lj0.items():
        assert lj1[p] == pytest.approx(2 * e0, rel=1e-12)
