import numpy as np, openmm
from aseimd.build.polymer import PolymerSpec, build_melt
from aseimd.forcefield import create_system
cell = build_melt(PolymerSpec("PAN", n_repeat=6, n_chains=2), density_g_per_cm3=0.2, temperature_K=298, seed=1)
sys_ = create_system(cell.topology, cutoff_nm=0.8)
nb = [f for f in sys_.getForces() if isinstance(f, openmm.NonbondedForce)][0]
atoms = list(cell.topology.atoms())
q = {}
for a in atoms:
    c, s, e = nb.getParticleParameters(a.index)
    q.setdefault((a.residue.name, a.name), (round(c._value, 4), round(s._value, 4), round(e._value, 6)))
for k in sorted(q): print(k, q[k])
print("total charge", sum(nb.getParticleParameters(i)[0]._value for i in range(nb.getNumParticles())))
print("dispersion correction", nb.getUseDispersionCorrection(), "method", nb.getNonbondedMethod())
for f in sys_.getForces(): print(type(f).__name__, f.getName(), getattr(f, 'getNumBonds', lambda: '')())
# 1-4 check: a CZ...C 1-4 pair
ex = {}
for k in range(nb.getNumExceptions()):
    i, j, qq, s, e = nb.getExceptionParameters(k)
    ex[(min(i,j), max(i,j))] = (qq._value, s._value, e._value)
qs = [nb.getParticleParameters(i)[0]._value for i in range(nb.getNumParticles())]
n14 = [(p, v) for p, v in ex.items() if abs(v[0]) > 0]
r = [v[0] / (qs[p[0]] * qs[p[1]]) for p, v in n14 if abs(qs[p[0]] * qs[p[1]]) > 1e-6]
print("1-4 coulomb ratio min/max", min(r), max(r), "n nonzero exceptions", len(n14))
lj = [f for f in sys_.getForces() if f.getName() == "LJ"][0]
print("LJ expr", lj.getEnergyFunction(), "LRC", lj.getUseLongRangeCorrection(), "cutoff", lj.getCutoffDistance(), "switch", lj.getUseSwitchingFunction())
print([lj.getPerParticleParameterName(i) for i in range(lj.getNumPerParticleParameters())])
seen = set()
for a in atoms:
    key = (a.residue.name, a.name)
    if key in seen: continue
    seen.add(key); print(key, lj.getParticleParameters(a.index))
ca = [f for f in sys_.getForces() if isinstance(f, openmm.CustomAngleForce)][0]
print("CustomAngle", ca.getEnergyFunction(), ca.getNumAngles(), ca.getAngleParameters(0) if ca.getNumAngles() else None)
lj14 = [f for f in sys_.getForces() if f.getName() == "LJ14"][0]
print("LJ14 expr", lj14.getEnergyFunction())
bad = 0
for k in range(lj14.getNumBonds()):
    i, j, (s, e) = lj14.getBondParameters(k)
    si, ei = lj.getParticleParameters(i); sj, ej = lj.getParticleParameters(j)
    if abs(s - si*sj) > 1e-9 or abs(e - 0.5*ei*ej) > 1e-9: bad += 1
print("LJ14 pairs not (geometric sigma, 0.5 x geometric eps):", bad, "of", lj14.getNumBonds())
