"""Chain growth is bit-for-bit reproducible at a fixed seed, and stays so across refactoring.

The digests below were recorded with the grower of commit 11f22e5 (before ``ChainGrower._try`` returned its
candidate lists and start frames instead of leaving them on the instance); any change of the random stream
(an extra or a missing draw, draws in another order), of the arithmetic of a placement or of which
candidate is taken changes them.  Each case is crowded enough that the all-states step and back-ups run
(asserted on the grower's counters); the PEO layer case also restarts chains (a new start frame).

The digest covers the float64 positions of every grown atom, the stereo signs built per chain and the
grower's counters.  They were recorded on x86-64 Linux (numpy 2, CPython's libm); a platform whose libm
rounds a sin/cos differently in the last bit would need them recorded again.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from aseimd.build import chain_growth as cg
from aseimd.build.polymer import PolymerSpec, tacticity_signs

from test_chain_growth import _blueprint, _bulk_box_nm

# (polymer, DP, chains, seed, layer, start density fraction): sha256 digest
CASES = {
    ("PEO", 12, 6, 7, False, 0.6): "b3727bed48c1140e17c70741f1d2c34b01c7ab03990bc7e5c77aed1d40f37a6c",
    ("PAN", 12, 6, 7, False, 0.6): "9794175300db0f7b27e461704dce587abfc18d789aab10d6f44782aef1ee357c",
    ("PAN", 12, 6, 3, True, 0.6): "9220c2ce5c46398bd295a7637035aae39163f3a95c2a7db8b521633c7faed3c9",
    ("PEO", 12, 6, 7, True, 0.7): "4b7adc50179cdfcf47a85da88716e2f3d1dbac5cd10d81598cb1c7b52027a62f",
}


def grow_digest(name, dp, n_chains, seed, layer, fraction):
    """Grow ``n_chains`` atactic chains into one box (bulk) or layer; sha256 of positions, signs, counters."""
    rng = np.random.default_rng(seed)
    bps = [_blueprint(name, dp, seed)] * n_chains
    n = sum(b.n_atoms for b in bps)
    box = _bulk_box_nm(bps, PolymerSpec(name).polymer.density_g_per_cm3, fraction)
    if layer:  # the same volume as a flat layer: 1.5 x 1.5 wider, 2.25 x thinner
        box = np.array([box[0] * 1.5, box[1] * 1.5, box[2] / 2.25])
        region = cg.GrowthRegion(box, False, 0.0, float(box[2]))
    else:
        region = cg.GrowthRegion(box, True)
    grower = cg.ChainGrower(region, n, rng)
    out, signs, off = [], [], 0
    for b in bps:
        out.append(grower.grow(b, off, tacticity_signs("atactic", len(b.stereocentres), rng), free_stereo=True))
        signs.append(grower.last_signs.copy())
        off += b.n_atoms
    xyz = np.ascontiguousarray(np.concatenate(out), dtype=np.float64)
    h = hashlib.sha256(xyz.tobytes())
    for s in signs:
        h.update(np.asarray(s, dtype=np.int64).tobytes())
    h.update(repr(sorted(grower.stats.items())).encode())
    return h.hexdigest(), dict(grower.stats)


@pytest.mark.parametrize("case", list(CASES), ids=lambda c: f"{c[0]}-{'layer' if c[4] else 'bulk'}-seed{c[3]}")
def test_grown_positions_are_bit_identical_to_the_recorded_ones(case):
    digest, stats = grow_digest(*case)
    assert stats["full_evaluations"] > 0 and stats["backtracks"] > 0  # the crowded paths ran
    if case[0] == "PEO" and case[4]:
        assert stats["restarts"] > 0  # a chain was restarted: a new start frame was drawn and used
    assert digest == CASES[case]


def test_the_digest_sees_a_changed_random_stream():
    """Growth from another seed gives another digest (the comparison above can fail)."""
    assert grow_digest("PEO", 12, 6, 8, False, 0.6)[0] != CASES[("PEO", 12, 6, 7, False, 0.6)]
