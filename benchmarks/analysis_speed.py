"""Analysis speed: aseimd against MDAnalysis EinsteinMSD (FFT) and solvation_analysis, on one trajectory.

Two suites. ``--suite transport`` (default, issue 10): ``aseimd analyze
diffusion`` and ``transference`` end to end on a wrapped file of correlated
cation-anion pairs with closed-form transport, against MDAnalysis EinsteinMSD
on the same file and against the raw read of the selected atoms, plus t+'s
standard error from the GLS and the old (ols-blocks) estimator next to the
truth (functions under "transport suite" below). ``--suite msd-cn``: the MSD
and coordination comparison described next.

What it does (msd-cn)
---------------------
1. Builds ONE synthetic, unwrapped trajectory (PDB + DCD) in ``--workdir`` (or a
   temporary directory): Li+ (residue LI, 1 atom), PF6- (residue PF6, 7 atoms)
   and EC (residue EC, 10 atoms) in a cubic box. Every Li+ carries four EC
   whose carbonyl oxygen (O1) sits 0.21 nm away in tetrahedral directions
   (with a small per-frame jitter); the complex random-walks as one body.
   PF6- and the remaining ("free") EC random-walk independently. All molecules
   are rigid (no rotation), so a Li-O1 coordination number of a bit more than 4
   is expected at a 0.30 nm cut-off, and the MSD is linear in time.
2. Reads the DCD once (so every reader below finds it in the page cache).
3. Runs each analysis in its own child process (``python analysis_speed.py
   --child TASK``), one after the other, and records from the child:
   wall time and CPU time (user + system, ``getrusage``) from opening the files
   to having the numbers (Python imports excluded; every task is single-threaded,
   so on an idle machine CPU time ~ wall time, and on a shared machine CPU time
   is the fairer clock) and the peak resident memory of the child process
   (``VmHWM`` from /proc/self/status: the high-water mark of the child's own
   address space; ``getrusage`` ru_maxrss is not used because Linux carries the
   forked parent's peak over an ``exec``) together with its resident memory
   after the imports, so the increase due to the analysis is visible.

   a. MSD of the ions (all Li atoms and the P atom of every PF6: 2 n_Li atoms)
      with aseimd against ``MDAnalysis.analysis.msd.EinsteinMSD(fft=True)``
      on the same atoms; both MSD curves must agree.
   b. Li-O1 coordination number at the same cut-off with aseimd against
      ``solvation_analysis.Solute`` (radii given, RDF skipped so it does only the
      coordination pass); the CNs must agree on the same frames.
      solvation_analysis keeps every pair of every frame in a pandas table, so
      on the full trajectory it is run on the first ``--sa-frames`` frames only
      and rates are compared per frame; the output says so.

Run
---
    python benchmarks/analysis_speed.py --quick                   # transport suite, seconds
    python benchmarks/analysis_speed.py                           # transport suite, 138 MiB file
    python benchmarks/analysis_speed.py --suite msd-cn --quick    # msd-cn smoke run
    python benchmarks/analysis_speed.py --suite msd-cn            # full: >= 1000 ions, 10^4 frames
    python benchmarks/analysis_speed.py --suite msd-cn --workdir /tmp/bench --keep --json results.json

Needs MDAnalysis, tidynamics (EinsteinMSD's FFT) and solvation_analysis (the
``test`` extra). Exit status 0 when every comparison agrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# residue templates, nm, in a local frame; EC's carbonyl O1 at the origin, C=O along +x
_EC_TEMPLATE = {
    "O1": (0.0, 0.0, 0.0), "C1": (0.121, 0.0, 0.0), "O2": (0.195, 0.109, 0.0), "O3": (0.195, -0.109, 0.0),
    "C2": (0.335, 0.077, 0.0), "C3": (0.335, -0.077, 0.0), "H1": (0.37, 0.12, 0.09), "H2": (0.37, 0.12, -0.09),
    "H3": (0.37, -0.12, 0.09), "H4": (0.37, -0.12, -0.09),
}
_PF6_TEMPLATE = {"P": (0, 0, 0), "F1": (0.16, 0, 0), "F2": (-0.16, 0, 0), "F3": (0, 0.16, 0),
                 "F4": (0, -0.16, 0), "F5": (0, 0, 0.16), "F6": (0, 0, -0.16)}
_TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)

LI_O_NM = 0.21  # Li-O1 distance of a bound EC
ION_SELECTION_MDTRAJ = "resname LI or (resname PF6 and name P)"
ION_SELECTION_MDA = "resname LI or (resname PF6 and name P)"
LI_SELECTION = "resname LI"
O1_SELECTION = "resname EC and name O1"


@dataclass(frozen=True)
class Sizes:
    """Size of the synthetic system and trajectory."""

    n_li: int            # Li+ and as many PF6-
    n_ec: int            # EC molecules (4 per Li+ bound, the rest free)
    n_frames: int
    box_nm: float
    dt_ps: float = 1.0
    sa_frames: int = 0   # frames given to solvation_analysis (0: all)
    cutoff_nm: float = 0.30
    seed: int = 2026

    @property
    def n_atoms(self) -> int:
        return self.n_li * (1 + 7) + self.n_ec * 10


QUICK = Sizes(n_li=20, n_ec=100, n_frames=200, box_nm=3.0, sa_frames=0)
FULL = Sizes(n_li=500, n_ec=2500, n_frames=10_000, box_nm=7.0, sa_frames=300)

# diffusion coefficients of the random walks, nm^2/ps
D_LI, D_PF6, D_EC = 1.0e-4, 1.5e-4, 3.0e-4


# --------------------------------------------------------------------------- data


def _rotation_to(u: np.ndarray) -> np.ndarray:
    """Rotation matrix taking +x onto the unit vector ``u`` (rows: images of x, y, z)."""
    x = np.array([1.0, 0.0, 0.0])
    v = np.cross(x, u)
    c = float(np.dot(x, u))
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([-1.0, -1.0, 1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    r = np.eye(3) + vx + vx @ vx / (1 + c)
    return r.T  # row-vector convention: template @ r


def build_system(s: Sizes, rng: np.random.Generator):
    """Topology, per-atom rigid-body index, per-atom offsets (nm) and per-body D (nm^2/ps)."""
    import mdtraj

    if s.n_ec < 4 * s.n_li:
        raise SystemExit(f"need n_ec >= 4 n_li (4 EC bound per Li+), got {s.n_ec} < {4 * s.n_li}")
    top = mdtraj.Topology()
    chain = top.add_chain()
    body, offsets = [], []
    n_bodies = 0
    li_body = []
    for _ in range(s.n_li):  # Li+ and its 4 EC are one body
        res = top.add_residue("LI", chain)
        top.add_atom("LI", mdtraj.element.lithium, res)
        body.append(n_bodies), offsets.append(np.zeros(3))
        li_body.append(n_bodies)
        n_bodies += 1
    for _ in range(s.n_li):
        res = top.add_residue("PF6", chain)
        for name, xyz in _PF6_TEMPLATE.items():
            top.add_atom(name, mdtraj.element.get_by_symbol(name[0]), res)
            body.append(n_bodies), offsets.append(np.array(xyz, float))
        n_bodies += 1
    ec_template = np.array(list(_EC_TEMPLATE.values()))
    bound_o1 = []
    for k in range(s.n_ec):
        res = top.add_residue("EC", chain)
        if k < 4 * s.n_li:  # bound: O1 at 0.21 nm from its Li along a tetrahedral direction, C=O pointing away
            li, corner = divmod(k, 4)
            u = _TETRAHEDRON[corner]
            local = ec_template @ _rotation_to(u) + LI_O_NM * u
            owner = li_body[li]
        else:
            u = rng.normal(size=3)
            local = ec_template @ _rotation_to(u / np.linalg.norm(u))
            owner = n_bodies
            n_bodies += 1
        for (name, _), xyz in zip(_EC_TEMPLATE.items(), local, strict=True):
            atom = top.add_atom(name, mdtraj.element.get_by_symbol(name[0]), res)
            body.append(owner), offsets.append(xyz)
            if name == "O1" and k < 4 * s.n_li:
                bound_o1.append(atom.index)
    d = np.concatenate([np.full(s.n_li, D_LI), np.full(s.n_li, D_PF6), np.full(n_bodies - 2 * s.n_li, D_EC)])
    return top, np.array(body), np.array(offsets), d, np.array(bound_o1)


def generate(s: Sizes, workdir: Path, chunk_frames: int = 250) -> tuple[Path, Path, float]:
    """Write ``bench.pdb`` and ``bench.dcd`` (unwrapped) into ``workdir``; return paths and seconds taken."""
    import mdtraj
    from mdtraj.formats import DCDTrajectoryFile

    t0 = time.perf_counter()
    rng = np.random.default_rng(s.seed)
    top, body, offsets, d, bound_o1 = build_system(s, rng)
    centres = rng.uniform(0, s.box_nm, size=(len(d), 3))
    sigma = np.sqrt(2 * d * s.dt_ps)[:, None]  # per-component step, nm
    box = np.full(3, s.box_nm, dtype=np.float32)
    pdb, dcd = workdir / "bench.pdb", workdir / "bench.dcd"
    with DCDTrajectoryFile(str(dcd), "w") as fh:
        done = 0
        while done < s.n_frames:
            n = min(chunk_frames, s.n_frames - done)
            steps = rng.normal(size=(n, len(d), 3)) * sigma
            if done == 0:
                steps[0] = 0.0
            walk = centres + np.cumsum(steps, axis=0)  # (n, n_bodies, 3)
            centres = walk[-1]
            xyz = (walk[:, body] + offsets).astype(np.float32)
            xyz[:, bound_o1] += rng.normal(scale=0.01, size=(n, len(bound_o1), 3)).astype(np.float32)
            if done == 0:
                first = mdtraj.Trajectory(xyz[:1], top, unitcell_lengths=box[None], unitcell_angles=[[90.0] * 3])
                first.save_pdb(str(pdb))
            fh.write(xyz * 10.0, cell_lengths=np.tile(box * 10.0, (n, 1)), cell_angles=np.full((n, 3), 90.0))
            done += n
    return pdb, dcd, time.perf_counter() - t0


def warm_page_cache(path: Path) -> float:
    """Read a file once so that every timed reader finds it in the page cache; returns seconds."""
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(64 * 1024 * 1024):
            pass
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- timed tasks (child side)


def task_mda_msd(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """MDAnalysis EinsteinMSD(fft=True) on the ion atoms; MSD (nm^2) per lag saved to ``out``."""
    import MDAnalysis as mda
    from MDAnalysis.analysis.msd import EinsteinMSD

    u = mda.Universe(str(pdb), str(dcd))
    msd = EinsteinMSD(u, select=ION_SELECTION_MDA, msd_type="xyz", fft=True).run()
    np.save(out, np.asarray(msd.results.timeseries) / 100.0)  # A^2 -> nm^2
    return {"n_atoms": int(msd.n_particles), "n_frames": int(msd.n_frames)}


def task_sa_cn(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """solvation_analysis Solute: Li-O1 coordination number on the first ``sa_frames`` frames."""
    import MDAnalysis as mda
    from solvation_analysis.solute import Solute

    u = mda.Universe(str(pdb), str(dcd))
    li = u.select_atoms(LI_SELECTION)
    o1 = u.select_atoms(O1_SELECTION)
    stop = s.sa_frames or None
    solute = Solute.from_atoms(li, {"EC": o1}, radii={"EC": s.cutoff_nm * 10.0}, skip_rdf=True,
                               analysis_classes=["coordination"])
    solute.run(stop=stop)
    cn = float(solute.coordination.coordination_numbers["EC"])
    n_frames = len(range(*slice(0, stop).indices(u.trajectory.n_frames)))
    np.save(out, np.array([cn]))
    return {"n_atoms": int(li.n_atoms + o1.n_atoms), "n_frames": n_frames, "cn": cn}


def task_aseimd_msd(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """aseimd: streamed ion positions (no drift removal, as EinsteinMSD) and D with block errors.

    Times :func:`aseimd.analysis.groups.load_positions` (chunked read of the ion atoms only,
    minimum-image unwrapping) plus :func:`aseimd.analysis.diffusion.self_diffusion` (FFT MSD
    of all particles at once, per-block MSDs, automatic fit window, block standard error),
    i.e. more than EinsteinMSD does. The MSD (nm^2) per lag is saved to ``out``.
    """
    from aseimd.analysis.diffusion import self_diffusion
    from aseimd.analysis.groups import load_positions, make_group
    from aseimd.analysis.trajectory import Trajectory

    traj = Trajectory(pdb, dcd, dt_ps=s.dt_ps)
    group = make_group(traj, "ions", ION_SELECTION_MDTRAJ, com=False)
    pos = load_positions(traj, [group], drift="none")
    res = self_diffusion(pos.of("ions"), traj.dt_ps, label="ions")
    np.save(out, res.msd_nm2)
    return {"n_atoms": int(group.n_particles), "n_frames": int(traj.n_frames),
            "D_m2_per_s": res.D_m2_per_s, "D_stderr_m2_per_s": res.D_stderr_m2_per_s,
            "fit_window_ps": list(res.window.ps(traj.dt_ps))}


def task_aseimd_msd_system_drift(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """As ``aseimd-msd`` but with aseimd's default drift removal (system centre of mass: a pass over ALL atoms)."""
    from aseimd.analysis.diffusion import self_diffusion
    from aseimd.analysis.groups import load_positions, make_group
    from aseimd.analysis.trajectory import Trajectory

    traj = Trajectory(pdb, dcd, dt_ps=s.dt_ps)
    group = make_group(traj, "ions", ION_SELECTION_MDTRAJ, com=False)
    pos = load_positions(traj, [group], drift="system")
    res = self_diffusion(pos.of("ions"), traj.dt_ps, label="ions")
    np.save(out, res.msd_nm2)
    return {"n_atoms": int(group.n_particles), "n_frames": int(traj.n_frames), "D_m2_per_s": res.D_m2_per_s}


def task_aseimd_msd_curve(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """aseimd, like for like with EinsteinMSD: streamed, unwrapped ion positions and the whole-run FFT MSD only."""
    from aseimd.analysis.groups import load_positions, make_group
    from aseimd.analysis.msd import msd_fft
    from aseimd.analysis.trajectory import Trajectory

    traj = Trajectory(pdb, dcd, dt_ps=s.dt_ps)
    group = make_group(traj, "ions", ION_SELECTION_MDTRAJ, com=False)
    pos = load_positions(traj, [group], drift="none")
    msd = msd_fft(pos.of("ions")).sum(axis=-1)
    np.save(out, msd)
    return {"n_atoms": int(group.n_particles), "n_frames": int(traj.n_frames)}


def _aseimd_cn(pdb: Path, dcd: Path, s: Sizes, stop: int | None) -> tuple[dict, float]:
    from aseimd.analysis.coordination import coordination_streamed

    res = coordination_streamed(pdb, dcd, {"Li": LI_SELECTION}, {"O1": O1_SELECTION}, {"O1": s.cutoff_nm},
                                dt_ps=s.dt_ps, stop=stop, r_max_nm=s.cutoff_nm)
    pair = res.pairs["O1"]
    n_frames = len(range(0, min(stop or s.n_frames, s.n_frames)))
    info = {"n_atoms": int(pair.n_center_atoms + pair.n_shell_atoms), "n_frames": n_frames,
            "cn": float(pair.cn_molecules), "cn_stderr": float(pair.cn_molecules_stderr)}
    return info, float(pair.cn_molecules)


def task_aseimd_cn(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """aseimd Li-O1 coordination (RDF to the cut-off, CN, shell compositions) on all frames."""
    info, cn = _aseimd_cn(pdb, dcd, s, None)
    np.save(out, np.array([cn]))
    return info


def task_aseimd_cn_subset(pdb: Path, dcd: Path, s: Sizes, out: Path) -> dict:
    """The same on the frames given to solvation_analysis (for the CN check and a same-frames wall time)."""
    info, cn = _aseimd_cn(pdb, dcd, s, s.sa_frames or None)
    np.save(out, np.array([cn]))
    return info


TASKS = {
    "aseimd-msd": task_aseimd_msd,
    "aseimd-msd-curve": task_aseimd_msd_curve,
    "aseimd-msd-system-drift": task_aseimd_msd_system_drift,
    "mdanalysis-msd": task_mda_msd,
    "aseimd-cn": task_aseimd_cn,
    "aseimd-cn-subset": task_aseimd_cn_subset,
    "solvation_analysis-cn": task_sa_cn,
}


#: Tasks run unless --tasks says otherwise (aseimd-msd-system-drift reads every atom: opt-in).
DEFAULT_TASKS = [t for t in TASKS if t != "aseimd-msd-system-drift"]


def _proc_status_kib(key: str) -> int:
    """A memory figure of this process from /proc/self/status (``VmRSS``, ``VmHWM``) in KiB; 0 if unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _peak_rss_kib() -> int:
    """Peak resident memory of this process since its ``exec``, in KiB.

    ``VmHWM`` (the high-water mark of this process's own address space) where
    /proc is available. ``getrusage().ru_maxrss`` is only the fallback: Linux
    carries the pre-exec peak of the forked parent over into the child, so it
    would report the parent's memory for a small child.
    """
    return _proc_status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_main(task: str, workdir: Path, s: Sizes) -> None:
    """Run one task in this (child) process and print one JSON line with timings and memory."""
    import importlib

    for mod in {"aseimd-msd": ["aseimd.analysis.diffusion", "aseimd.analysis.groups", "mdtraj"],
                "aseimd-msd-system-drift": ["aseimd.analysis.diffusion", "aseimd.analysis.groups", "mdtraj"],
                "aseimd-msd-curve": ["aseimd.analysis.groups", "aseimd.analysis.msd", "mdtraj"],
                "aseimd-cn": ["aseimd.analysis.coordination", "scipy.spatial", "mdtraj"],
                "aseimd-cn-subset": ["aseimd.analysis.coordination", "scipy.spatial", "mdtraj"],
                "mdanalysis-msd": ["MDAnalysis", "MDAnalysis.analysis.msd", "tidynamics"],
                "solvation_analysis-cn": ["MDAnalysis", "solvation_analysis.solute"]}[task]:
        importlib.import_module(mod)  # imports are not timed
    rss_after_imports = _proc_status_kib("VmRSS")
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    info = TASKS[task](workdir / "bench.pdb", workdir / "bench.dcd", s, workdir / f"{task}.npy")
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak = _peak_rss_kib()
    print(json.dumps({"task": task, "wall_s": wall, "cpu_s": cpu, "peak_rss_MiB": peak / 1024,
                      "rss_after_imports_MiB": rss_after_imports / 1024, **info}))


# --------------------------------------------------------------------------- parent side


def run_child(task: str, workdir: Path, s: Sizes, timeout_s: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, "--workdir", str(workdir),
           "--sizes-json", json.dumps(asdict(s))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"task": task, "error": f"timed out after {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"task": task, "error": err}
    return json.loads(lines[-1])


def compare(workdir: Path, results: dict, s: Sizes) -> dict:
    """Check the aseimd numbers against the peers'; returns the comparison block."""
    out: dict = {}
    m = workdir / "mdanalysis-msd.npy"
    # no drift removal on either side: the curves must agree to float32 round-off; with aseimd's system
    # centre-of-mass removal they differ by the (random-walk) drift of the whole system, O(1/n_bodies)
    for key, mine, tol in (("msd", "aseimd-msd", 1e-4), ("msd_curve_only", "aseimd-msd-curve", 1e-4),
                           ("msd_system_drift", "aseimd-msd-system-drift", None)):
        a = workdir / f"{mine}.npy"
        if not (a.exists() and m.exists()):
            continue
        msd_a, msd_m = np.load(a), np.load(m)
        n = min(len(msd_a), len(msd_m))  # aseimd-msd keeps lags up to n_frames/2
        rel = np.abs(msd_a[1:n] - msd_m[1:n]) / np.maximum(msd_m[1:n], 1e-12)
        k = max(1, n // 10)
        # the random walks' expectation: 6 D t averaged over Li and P
        expected = 6 * 0.5 * (D_LI + D_PF6) * k * s.dt_ps
        out[key] = {
            "n_lags_compared": n - 1,
            "max_rel_diff": float(rel.max()),
            "agree": None if tol is None else bool(rel.max() < tol),  # None: timing only, not a check
            f"msd_at_lag_{k}_nm2": [float(msd_a[k]), float(msd_m[k])],
            "expected_nm2": float(expected),
        }
    # the CN check needs the same frames: the subset run when solvation_analysis got a subset
    subset = bool(s.sa_frames) and s.sa_frames < s.n_frames
    a = workdir / ("aseimd-cn-subset.npy" if subset else "aseimd-cn.npy")
    p = workdir / "solvation_analysis-cn.npy"
    if a.exists() and p.exists():
        cn_a, cn_p = float(np.load(a)[0]), float(np.load(p)[0])
        # distances come from float32 coordinates in both codes; a pair within ~1e-6 nm of the cut-off
        # may fall on either side, which changes the CN by 1 / (n_Li n_frames)
        out["cn"] = {"frames_compared": s.sa_frames if subset else s.n_frames,
                     "aseimd": cn_a, "solvation_analysis": cn_p, "abs_diff": abs(cn_a - cn_p),
                     "agree": abs(cn_a - cn_p) < 1e-4}
    pairs = {"msd": ("aseimd-msd", "mdanalysis-msd"), "msd_curve_only": ("aseimd-msd-curve", "mdanalysis-msd"),
             "cn": ("aseimd-cn", "solvation_analysis-cn")}
    if subset:
        pairs["cn_same_frames"] = ("aseimd-cn-subset", "solvation_analysis-cn")
    pairs["msd_system_drift"] = ("aseimd-msd-system-drift", "mdanalysis-msd")
    for key, (mine, peer) in pairs.items():
        r_a, r_p = results.get(mine, {}), results.get(peer, {})
        if "wall_s" in r_a and "wall_s" in r_p:
            same = r_a["n_frames"] == r_p["n_frames"]
            block = out.setdefault(key, {})
            for clock in ("wall_s", "cpu_s"):
                rate_a = r_a["n_frames"] / max(r_a[clock], 1e-9)
                rate_p = r_p["n_frames"] / max(r_p[clock], 1e-9)
                name = clock[:-2]
                block.update({
                    f"aseimd_frames_per_{name}_s": rate_a, f"peer_frames_per_{name}_s": rate_p,
                    f"speedup_per_frame_{name}": rate_a / rate_p,
                    f"speedup_total_{name}": r_p[clock] / r_a[clock] if same else None,
                })
    return out


def print_report(s: Sizes, gen_s: float, dcd: Path, results: dict, comparison: dict) -> None:
    print(f"system: {s.n_li} Li+ + {s.n_li} PF6- ({2 * s.n_li} ions), {s.n_ec} EC, {s.n_atoms} atoms, "
          f"box {s.box_nm} nm; {s.n_frames} frames; DCD {dcd.stat().st_size / 2**20:.0f} MiB "
          f"(generated in {gen_s:.1f} s)")
    print(f"{'task':24s} {'frames':>7s} {'atoms':>6s} {'wall (s)':>9s} {'CPU (s)':>8s} {'frames/CPU s':>12s} "
          f"{'peak RSS (MiB)':>15s} {'after imports':>14s}")
    for task, r in results.items():
        if "error" in r:
            print(f"{task:24s} ERROR: {r['error']}")
            continue
        print(f"{task:24s} {r['n_frames']:7d} {r['n_atoms']:6d} {r['wall_s']:9.2f} {r['cpu_s']:8.2f} "
              f"{r['n_frames'] / max(r['cpu_s'], 1e-9):12.1f} {r['peak_rss_MiB']:15.0f} "
              f"{r['rss_after_imports_MiB']:14.0f}")
    print(f"{'comparison':16s} {'agree':>6s} {'max rel diff':>12s} {'speed-up CPU':>13s} {'speed-up wall':>14s}"
          "   (peer time / aseimd time, per frame)")
    for key, c in comparison.items():
        diff = c.get("max_rel_diff", c.get("abs_diff"))
        print(f"{key:16s} {str(c.get('agree', '-')):>6s} {'-' if diff is None else f'{diff:.1e}':>12s} "
              f"{c.get('speedup_per_frame_cpu', float('nan')):13.2f} {c.get('speedup_per_frame_wall', float('nan')):14.2f}")
    whole = s.n_frames * s.n_atoms * 12 / 2**20
    sel = s.n_frames * 2 * s.n_li * 24 / 2**20
    print(f"memory: aseimd streams only the selected atoms in chunks (Trajectory.iter_chunks); the whole "
          f"trajectory would be {whole:.0f} MiB as float32, the ion positions kept for the MSD "
          f"{sel:.0f} MiB as float64 (plus FFT buffers capped at 256 MiB); coordination keeps one chunk")
    if "cn" in comparison and "aseimd" in comparison["cn"]:
        c = comparison["cn"]
        print(f"Li-O1 CN on {c['frames_compared']} frames: aseimd {c['aseimd']:.6f}, "
              f"solvation_analysis {c['solvation_analysis']:.6f}")


# --------------------------------------------------------------------------- transport suite (issue 10)


@dataclass(frozen=True)
class PairSizes:
    """The transport benchmark file: cation-anion pairs with correlated steps, wrapped, plus static solvent."""

    n_pairs: int = 300
    n_solvent: int = 600       # static Xe atoms: a heavy frame so that the COM frame does not pin t+
    n_frames: int = 10_000
    box_nm: float = 5.0
    dt_ps: float = 1.0
    seed: int = 2026


PAIR_QUICK = PairSizes(n_pairs=20, n_solvent=40, n_frames=600, box_nm=3.0)
#: Diffusion coefficients (nm^2/ps) of the shared, cation-only and anion-only Brownian parts.
DS, DA, DB = 0.01, 0.005, 0.015
T_K = 300.0


def pair_truth_com(p: PairSizes) -> dict:
    """Closed-form t+, sigma_EH, D+ and D- in the centre-of-mass frame of the whole (ions + static solvent) system."""
    import mdtraj

    m_p, m_m, m_s = mdtraj.element.lithium.mass, mdtraj.element.phosphorus.mass, mdtraj.element.xenon.mass
    n = p.n_pairs
    M = n * (m_p + m_m) + p.n_solvent * m_s
    # per-direction step covariance per ps / 2 of the summed positions X+, X-
    S = n * np.array([[DS + DA, DS], [DS, DS + DB]])
    A = np.array([[1 - n * m_p / M, -n * m_m / M], [-n * m_p / M, 1 - n * m_m / M]])
    Sp = A @ S @ A.T
    v = np.array([1.0, -1.0])
    kT = 1.380649e-23 * T_K
    volume_m3 = p.box_nm**3 * 1e-27
    to_L = 1e-6 / (volume_m3 * kT)
    cov_iR = lambda own, shared: (m_p * own + m_m * shared) / M  # noqa: E731
    var_R = (m_p**2 * n * (DS + DA) + m_m**2 * n * (DS + DB) + 2 * m_p * m_m * n * DS) / M**2
    D_p = DS + DA - 2 * cov_iR(DS + DA, DS) + var_R
    D_m = DS + DB - 2 * (m_p * DS + m_m * (DS + DB)) / M + var_R
    return {"t_plus_onsager": float((Sp[0, 0] - Sp[0, 1]) / (v @ Sp @ v)),
            "sigma_eh_S_per_m": float(1.602176634e-19**2 * (v @ Sp @ v) * to_L),
            "D_plus_m2_per_s": float(D_p * 1e-6), "D_minus_m2_per_s": float(D_m * 1e-6)}


def generate_pairs(p: PairSizes, workdir: Path) -> tuple[Path, Path, float]:
    """Write ``pairs.pdb``, ``pairs.dcd`` (wrapped into the box) and ``run.json`` (dt) into ``workdir``."""
    import mdtraj
    from mdtraj.formats import DCDTrajectoryFile

    t0 = time.perf_counter()
    rng = np.random.default_rng(p.seed)
    top = mdtraj.Topology()
    chain = top.add_chain()
    for resname, atom, element, count in (("LI", "LI", mdtraj.element.lithium, p.n_pairs),
                                          ("PF6", "P", mdtraj.element.phosphorus, p.n_pairs),
                                          ("XE", "XE", mdtraj.element.xenon, p.n_solvent)):
        for _ in range(count):
            top.add_atom(atom, element, top.add_residue(resname, chain))
    n = p.n_pairs
    start = rng.uniform(0, p.box_nm, (n, 3))
    pos = np.concatenate([start, start + rng.normal(scale=0.15, size=(n, 3)),
                          rng.uniform(0, p.box_nm, (p.n_solvent, 3))])
    scale = np.sqrt(2.0 * np.array([DS, DA, DB]) * p.dt_ps)
    box = np.full(3, p.box_nm, dtype=np.float32)
    pdb, dcd = workdir / "pairs.pdb", workdir / "pairs.dcd"
    chunk = 1000
    with DCDTrajectoryFile(str(dcd), "w") as fh:
        done = 0
        while done < p.n_frames:
            k = min(chunk, p.n_frames - done)
            steps = rng.standard_normal((3, k, n, 3)) * scale[:, None, None, None]
            if done == 0:
                steps[:, 0] = 0.0
            shared, a, b = np.cumsum(steps, axis=1)
            walk = np.concatenate([pos[None, :n] + shared + a, pos[None, n:2 * n] + shared + b,
                                   np.broadcast_to(pos[2 * n:], (k, p.n_solvent, 3))], axis=1)
            pos = np.concatenate([walk[-1, :2 * n], pos[2 * n:]])
            wrapped = (walk - p.box_nm * np.floor(walk / p.box_nm)).astype(np.float32)
            if done == 0:
                mdtraj.Trajectory(wrapped[:1], top, unitcell_lengths=box[None],
                                  unitcell_angles=[[90.0] * 3]).save_pdb(str(pdb))
            fh.write(wrapped * 10.0, cell_lengths=np.tile(box * 10.0, (k, 1)), cell_angles=np.full((k, 3), 90.0))
            done += k
    (workdir / "run.json").write_text(json.dumps({"trajectory": {"file": dcd.name, "dt_ps": p.dt_ps,
                                                                 "n_frames": p.n_frames}}))
    return pdb, dcd, time.perf_counter() - t0


def _cli_command(workdir: Path, which: str, method: str = "gls", plot: bool = True) -> list[str]:
    base = [sys.executable, "-c", "import sys; from aseimd.cli import main; sys.exit(main())", "analyze"]
    files = ["--top", str(workdir / "pairs.pdb"), "--traj", str(workdir / "pairs.dcd"), "--force"]
    if which == "diffusion":
        name = f"diffusion_{method}" + ("" if plot else "_noplot")
        return base + ["diffusion", *files, "--group", "Li=resname LI", "--group", "PF6=resname PF6",
                       "--json", str(workdir / f"{name}.json"), "--method", method] + ([] if plot else ["--no-plot"])
    name = f"transference_{method}" + ("" if plot else "_noplot")
    return base + ["transference", *files, "--cation", "Li=resname LI", "--anion", "PF6=resname PF6",
                   "--temperature-K", str(T_K), "--json", str(workdir / f"{name}.json"),
                   "--method", method] + ([] if plot else ["--no-plot"])


#: The process-level I/O anchor: the least an end-to-end Python tool must do to get the ion positions (start
#: the interpreter, import numpy and aseimd's DCD reader, read the ion atoms of every frame). The ions are the
#: first 2 n_pairs atoms of the benchmark file (LI, then PF6), so no topology is parsed.
_PROCESS_READ = r"""
import sys
import numpy as np
from aseimd.analysis.dcd_reader import open_dcd
d = open_dcd(sys.argv[1])
atoms = np.arange(int(sys.argv[2]) if len(sys.argv) > 2 else d.n_atoms)
for lo in range(0, d.n_frames, 1000):
    d.read(np.arange(lo, min(lo + 1000, d.n_frames)), atoms)
"""


def _process_read_command(workdir: Path, n_atoms: int | None) -> list[str]:
    return [sys.executable, "-c", _PROCESS_READ, str(workdir / "pairs.dcd")] + ([] if n_atoms is None else
                                                                               [str(n_atoms)])


#: Byte-code cache of every timed child (set by :func:`main`; None: the children inherit the environment).
#: A user's aseimd, like MDAnalysis in site-packages, runs from compiled byte code (pip compiles on install;
#: an editable install writes __pycache__ on first import). Where the environment forbids writing byte code
#: (PYTHONDONTWRITEBYTECODE, as on the development machine) an editable aseimd would recompile its ~30
#: modules in every timed run (~0.06 s) while MDAnalysis would not, so every child gets one private cache
#: instead (PYTHONPYCACHEPREFIX: all modules, aseimd's and MDAnalysis' alike) and a warm-up run fills it.
PYCACHE_PREFIX: Path | None = None


#: OpenBLAS threads of every timed child unless a row says otherwise: one, as the aseimd CLI sets for itself
#: (``aseimd/cli/__init__.py``). With OpenBLAS's default (a worker per CPU) the idle workers busy-wait for
#: ~0.1 s after numpy's import, which adds about the same CPU time to every process, the short process read
#: as much as a long analysis, and so flatters every ratio to it; the ``_blas_default`` rows show the effect.
BLAS_THREADS = 1


def _env(hugepage: bool | None, blas_threads: int = BLAS_THREADS) -> dict:
    """The child's environment: inherited, with the benchmark's byte-code cache, numpy's huge-page
    madvise forced on or off (``hugepage`` True/False) or left alone (None), and ``blas_threads``
    OpenBLAS threads."""
    env = dict(os.environ)
    if PYCACHE_PREFIX is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_PREFIX)
    if hugepage is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = "1" if hugepage else "0"
    env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    return env


def _warm_best(once, repeat: int) -> dict:
    """``once()`` once untimed (it fills the children's byte-code cache; kept under "warmup"), then the best
    of ``repeat`` timed calls (:func:`_best`)."""
    warm = once()
    return _best([once() for _ in range(max(1, repeat))]) | {"warmup": warm}


def _best(runs: list[dict]) -> dict:
    """The run with the least CPU time (timeit's rule: noise only adds), with every run's figures attached."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    best = dict(min(ok, key=lambda r: r["cpu_s"]))
    best["runs"] = [{k: v for k, v in r.items() if k.endswith("_s")} for r in runs]
    return best


def time_command(cmd: list[str], timeout_s: float, repeat: int = 1, hugepage: bool | None = None,
                 blas_threads: int = BLAS_THREADS) -> dict:
    """Wall and CPU (user + system of the child) of a command, end to end (imports, plots, files included).

    Run ``repeat`` times after one warm-up run; the figures are those of the run with the least CPU time
    (all runs under "runs").
    """
    return _warm_best(lambda: _time_once(cmd, timeout_s, hugepage, blas_threads), repeat)


def _time_once(cmd: list[str], timeout_s: float, hugepage: bool | None, blas_threads: int = BLAS_THREADS) -> dict:
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=_env(hugepage, blas_threads))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out = {"wall_s": wall, "cpu_s": cpu, "rc": proc.returncode}
    if proc.returncode != 0:
        out["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    out["stdout_has_dcdplugin"] = "dcdplugin" in proc.stdout
    return out


_PAIR_CHILD = r"""
import json, resource, sys, time
import numpy as np
task, workdir = sys.argv[1], sys.argv[2]
def clock():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime
if task == "raw-read":
    from aseimd.analysis.dcd_reader import open_dcd
    import mdtraj
    top = mdtraj.load_topology(workdir + "/pairs.pdb")
    ions = top.select("resname LI or resname PF6")
    every = np.arange(top.n_atoms)
    def read(atoms):
        d = open_dcd(workdir + "/pairs.dcd")
        for lo in range(0, d.n_frames, 1000):
            d.read(np.arange(lo, min(lo + 1000, d.n_frames)), atoms)
    read(ions)  # warm-up: first-touch costs of the reader's buffers are not I/O
    w0, c0 = clock()
    read(ions)
    w1, c1 = clock()
    read(every)
    w2, c2 = clock()
    with open(workdir + "/pairs.dcd", "rb") as fh:
        while fh.read(64 << 20):
            pass
    w3, c3 = clock()
    print(json.dumps({"wall_s": w1 - w0, "cpu_s": c1 - c0, "all_atoms_wall_s": w2 - w1, "all_atoms_cpu_s": c2 - c1,
                      "bytes_wall_s": w3 - w2, "bytes_cpu_s": c3 - c2}))
elif task == "aseimd-diffusion-lib":
    w0, c0 = clock()
    from aseimd.analysis.diffusion import analyze_diffusion
    from aseimd.analysis.trajectory import Trajectory
    import aseimd.analysis.engine, aseimd.analysis.einstein, aseimd.species
    import mdtraj
    w1, c1 = clock()
    rep = analyze_diffusion(Trajectory(workdir + "/pairs.pdb", workdir + "/pairs.dcd"),
                            {"Li": "resname LI", "PF6": "resname PF6"})
    w2, c2 = clock()
    print(json.dumps({"wall_s": w2 - w0, "cpu_s": c2 - c0, "analysis_wall_s": w2 - w1, "analysis_cpu_s": c2 - c1}))
elif task == "mdanalysis-msd":
    w0, c0 = clock()
    import MDAnalysis as mda
    from MDAnalysis.analysis.msd import EinsteinMSD
    w1, c1 = clock()
    u = mda.Universe(workdir + "/pairs.pdb", workdir + "/pairs.dcd", dt=1.0)
    for sel in ("resname LI", "resname PF6"):
        EinsteinMSD(u, select=sel, msd_type="xyz", fft=True).run()
    w2, c2 = clock()
    print(json.dumps({"wall_s": w2 - w0, "cpu_s": c2 - c0, "analysis_wall_s": w2 - w1, "analysis_cpu_s": c2 - c1}))
elif task == "aseimd-one-pass":
    w0, c0 = clock()
    from aseimd.analysis import run_analyses, DiffusionAnalysis, TransferenceAnalysis
    import aseimd.analysis.engine, aseimd.analysis.diffusion, aseimd.analysis.transference, aseimd.species
    import mdtraj
    w1, c1 = clock()
    d, t = run_analyses((workdir + "/pairs.pdb", workdir + "/pairs.dcd"), [
        DiffusionAnalysis({"Li": "resname LI", "PF6": "resname PF6"}),
        TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=300.0)])
    w2, c2 = clock()
    print(json.dumps({"wall_s": w2 - w0, "cpu_s": c2 - c0, "analysis_wall_s": w2 - w1, "analysis_cpu_s": c2 - c1,
                      "t_plus_onsager": t.to_json()["t_plus_onsager"]}))
"""


def run_pair_child(task: str, workdir: Path, timeout_s: float, repeat: int = 1, hugepage: bool | None = None) -> dict:
    """One timed task of :data:`_PAIR_CHILD` in a fresh interpreter (best of ``repeat`` by CPU time, after a
    warm-up run)."""
    return _warm_best(lambda: _pair_child_once(task, workdir, timeout_s, hugepage), repeat)


def _pair_child_once(task: str, workdir: Path, timeout_s: float, hugepage: bool | None) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PAIR_CHILD, task, str(workdir)], capture_output=True, text=True,
                          timeout=timeout_s, env=_env(hugepage))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def transport_suite(p: PairSizes, workdir: Path, timeout_s: float, with_mdanalysis: bool = True,
                    repeat: int = 3) -> dict:
    """Time the transport commands end to end against MDAnalysis and the raw read; compare the errors.

    Every row is the best (least CPU) of ``repeat`` runs in fresh processes. The aseimd CLI switches numpy's
    huge-page madvise off in its own process (see ``aseimd/cli/__init__.py``); the library rows and MDAnalysis
    run with numpy's default, and once more with it off, so that the gain is not credited to aseimd alone.
    """
    pdb, dcd, gen_s = generate_pairs(p, workdir)
    warm_page_cache(dcd)
    res: dict = {"sizes": asdict(p), "dcd_MiB": dcd.stat().st_size / 2**20, "generate_s": gen_s,
                 "load_before": os.getloadavg(), "repeat": repeat}
    res["raw_read"] = run_pair_child("raw-read", workdir, timeout_s, repeat)
    res["process_floor"] = time_command([sys.executable, "-c", "import numpy"], timeout_s, repeat)
    res["process_read"] = time_command(_process_read_command(workdir, 2 * p.n_pairs), timeout_s, repeat)
    res["process_read_all"] = time_command(_process_read_command(workdir, None), timeout_s, repeat)
    res["diffusion"] = time_command(_cli_command(workdir, "diffusion"), timeout_s, repeat)
    res["diffusion_no_plot"] = time_command(_cli_command(workdir, "diffusion", plot=False), timeout_s, repeat)
    res["diffusion_hugepage"] = time_command(_cli_command(workdir, "diffusion"), timeout_s, repeat, hugepage=True)
    res["transference"] = time_command(_cli_command(workdir, "transference"), timeout_s, repeat)
    res["transference_no_plot"] = time_command(_cli_command(workdir, "transference", plot=False), timeout_s, repeat)
    # the same three with OpenBLAS's default thread count (one worker per CPU), for every process alike
    cpus = os.cpu_count() or 1
    res["blas_default_threads"] = cpus
    res["process_read_blas_default"] = time_command(_process_read_command(workdir, 2 * p.n_pairs), timeout_s, repeat,
                                                    blas_threads=cpus)
    res["diffusion_no_plot_blas_default"] = time_command(_cli_command(workdir, "diffusion", plot=False), timeout_s,
                                                         repeat, blas_threads=cpus)
    res["transference_no_plot_blas_default"] = time_command(_cli_command(workdir, "transference", plot=False),
                                                            timeout_s, repeat, blas_threads=cpus)
    res["transference_ols_blocks"] = time_command(_cli_command(workdir, "transference", "ols-blocks"), timeout_s,
                                                  repeat)
    res["diffusion_library"] = run_pair_child("aseimd-diffusion-lib", workdir, timeout_s, repeat)
    res["diffusion_library_no_hugepage"] = run_pair_child("aseimd-diffusion-lib", workdir, timeout_s, repeat,
                                                          hugepage=False)
    res["one_pass_both"] = run_pair_child("aseimd-one-pass", workdir, timeout_s, repeat)
    if with_mdanalysis:
        res["mdanalysis_einstein_msd_two_groups"] = run_pair_child("mdanalysis-msd", workdir, timeout_s, repeat)
        res["mdanalysis_no_hugepage"] = run_pair_child("mdanalysis-msd", workdir, timeout_s, repeat, hugepage=False)
    res["load_after"] = os.getloadavg()
    truth = pair_truth_com(p)
    res["truth"] = truth
    estimates = {}
    for method in ("gls", "ols-blocks"):
        path = workdir / f"transference_{method}.json"
        if path.exists():
            doc = json.loads(path.read_text())
            estimates[method] = {k: [doc[k], doc[k.replace("_S_per_m", "") + "_stderr" + (
                "_S_per_m" if k.endswith("_S_per_m") else "")]] for k in ("t_plus_onsager", "sigma_eh_S_per_m")}
            estimates[method]["fit_window_ps"] = doc["fit_window_ps"]
            estimates[method]["n_blocks"] = doc["n_blocks"]
    res["estimates"] = estimates
    return res


def print_transport(res: dict) -> None:
    """The table: every timed row with wall and CPU, and its ratios to MDAnalysis and to the raw read."""
    p = res["sizes"]
    print(f"transport file: {p['n_pairs']} Li+/{p['n_pairs']} anion pairs with correlated steps + "
          f"{p['n_solvent']} static Xe, {p['n_frames']} frames, wrapped, DCD {res['dcd_MiB']:.0f} MiB")
    print("load average (1, 5, 15 min) before: " + " ".join(f"{x:.2f}" for x in res.get("load_before", ()))
          + "; after: " + " ".join(f"{x:.2f}" for x in res.get("load_after", ())) + f"; {os.cpu_count()} CPUs")
    raw = res["raw_read"]
    if "error" in raw:
        print("raw read: ERROR", raw["error"])
        return
    mda = res.get("mdanalysis_einstein_msd_two_groups") or {}
    have_mda = bool(mda) and "error" not in mda
    proc = res.get("process_read") or {"error": "not run"}
    have_proc = "error" not in proc
    header = (f"{'what':52s} {'wall (s)':>8s} {'CPU (s)':>8s} {'MDA/this wall':>13s} {'MDA/this CPU':>12s} "
              f"{'this/read wall':>14s} {'this/read CPU':>13s} {'this/proc wall':>14s} {'this/proc CPU':>13s}")
    print(header)

    def row(name, wall, cpu, mda_wall=None, mda_cpu=None, vs_process=False, anchor=None):
        cells = [f"{name:52s} {wall:8.2f} {cpu:8.2f}"]
        cells.append(f"{mda_wall / wall:13.2f} {mda_cpu / cpu:12.2f}" if mda_wall else f"{'':13s} {'':12s}")
        cells.append(f"{wall / raw['wall_s']:14.1f} {cpu / raw['cpu_s']:13.1f}")
        ref = anchor if anchor is not None else (proc if have_proc else None)
        if vs_process and ref is not None:
            cells.append(f"{wall / ref['wall_s']:14.1f} {cpu / ref['cpu_s']:13.1f}")
        print(" ".join(cells))

    def timed(name, r):
        """A row's plain wall and CPU, or its error; False when it has none."""
        if "error" in r:
            print(f"{name:52s} ERROR {r['error']}")
            return False
        print(f"{name:52s} {r['wall_s']:8.2f} {r['cpu_s']:8.2f}")
        return True

    print(f"{'raw read, ion atoms (in process: the I/O limit)':52s} {raw['wall_s']:8.2f} {raw['cpu_s']:8.2f}")
    if "all_atoms_cpu_s" in raw:
        print(f"{'raw read, every atom (what drift=system must read)':52s} {raw['all_atoms_wall_s']:8.2f} "
              f"{raw['all_atoms_cpu_s']:8.2f}")
    print(f"{'plain byte read of the whole file':52s} {raw['bytes_wall_s']:8.2f} {raw['bytes_cpu_s']:8.2f}")
    for name, key in (("process: python -c 'import numpy' (the floor)", "process_floor"),
                      ("process read: python+numpy+DCD reader, ion atoms", "process_read"),
                      ("process read, every atom", "process_read_all")):
        timed(name, res.get(key, {"error": "not run"}))
    end_to_end = [("aseimd analyze diffusion (CLI, end to end)", res["diffusion"]),
                  ("  same, --no-plot (JSON + CSV only)", res.get("diffusion_no_plot", {"error": "not run"})),
                  ("  same, NUMPY_MADVISE_HUGEPAGE=1 (numpy's default)",
                   res.get("diffusion_hugepage", {"error": "not run"})),
                  ("aseimd analyze transference (CLI, end to end)", res["transference"]),
                  ("  same, --no-plot", res.get("transference_no_plot", {"error": "not run"})),
                  ("  same, --method ols-blocks", res["transference_ols_blocks"])]
    for name, r in end_to_end:
        if "error" in r:
            print(f"{name:52s} ERROR {r['error']}")
        else:
            row(name, r["wall_s"], r["cpu_s"], mda.get("wall_s") if have_mda else None,
                mda.get("cpu_s") if have_mda else None, vs_process=True)
    unpinned = res.get("process_read_blas_default")
    if unpinned is not None:
        n = res.get("blas_default_threads", "?")
        print(f"with OpenBLAS's default {n} threads per process (every process alike; this/proc against the "
              "process read run so):")
        have_unpinned = timed("  process read, ion atoms", unpinned)
        for name, key in (("  aseimd analyze diffusion --no-plot", "diffusion_no_plot_blas_default"),
                          ("  aseimd analyze transference --no-plot", "transference_no_plot_blas_default")):
            r = res.get(key, {"error": "not run"})
            if "error" in r:
                print(f"{name:52s} ERROR {r['error']}")
            elif have_unpinned:
                row(name, r["wall_s"], r["cpu_s"], vs_process=True, anchor=unpinned)
            else:
                timed(name, r)
    for name, key in (("diffusion library, imports excluded", "diffusion_library"),
                      ("  same, NUMPY_MADVISE_HUGEPAGE=0", "diffusion_library_no_hugepage"),
                      ("run_analyses(diffusion + transference), imports excl.", "one_pass_both")):
        r = res.get(key, {"error": "not run"})
        if "error" in r:
            print(f"{name:52s} ERROR {r['error']}")
        else:
            row(name, r["analysis_wall_s"], r["analysis_cpu_s"], mda.get("analysis_wall_s") if have_mda else None,
                mda.get("analysis_cpu_s") if have_mda else None)
    if mda:
        if "error" in mda:
            print(f"{'MDAnalysis EinsteinMSD, Li and PF6':52s} ERROR {mda['error']}")
        else:
            row("MDAnalysis EinsteinMSD, Li and PF6 (incl. imports)", mda["wall_s"], mda["cpu_s"], vs_process=True)
            row("MDAnalysis EinsteinMSD, analysis only", mda["analysis_wall_s"], mda["analysis_cpu_s"])
            off = res.get("mdanalysis_no_hugepage", {})
            if "cpu_s" in off:
                row("  same, NUMPY_MADVISE_HUGEPAGE=0 (incl. imports)", off["wall_s"], off["cpu_s"], vs_process=True)
    print(f"every row: the best (least CPU) of {res.get('repeat', 1)} runs, each in a fresh process, after one "
          "untimed warm-up run that fills the children's byte-code cache (PYTHONPYCACHEPREFIX, shared by every "
          "tool; byte code as a pip install has it), with OPENBLAS_NUM_THREADS=1 (what the aseimd CLI sets for "
          "itself; OpenBLAS's idle workers would otherwise add ~0.1 s of spinning to every process's CPU time, the "
          "short reads' as much as the analyses', and flatter every CPU ratio: see the rows with the default)")
    print("MDA/this: MDAnalysis time over this row's (end-to-end rows against MDAnalysis with imports, library rows "
          "against its analysis alone); goal >= 5. MDAnalysis draws no plot: the like-for-like end-to-end rows are "
          "the --no-plot ones.")
    print("this/read: the row over the in-process raw read of the ion atoms (interpreter and imports not counted "
          "in the read). this/proc: an end-to-end row over the process-level read (a fresh interpreter that "
          "imports numpy and aseimd's DCD reader and reads the ion atoms: the least an end-to-end Python tool "
          "does). The goal 'within 3x of the raw read' is judged on this/proc for end-to-end rows (both sides "
          "then pay the interpreter start and the numpy import) and on this/read for the library rows; both are "
          "printed.")
    truth = res["truth"]
    for method, est in res["estimates"].items():
        t, s = est["t_plus_onsager"], est["sigma_eh_S_per_m"]
        print(f"{method:10s} t+ = {t[0]:.4f} ± {t[1]:.4f} (truth {truth['t_plus_onsager']:.4f}); "
              f"sigma_EH = {s[0]:.3f} ± {s[1]:.3f} S/m (truth {truth['sigma_eh_S_per_m']:.3f}); "
              f"window {est['fit_window_ps'][0]:g}-{est['fit_window_ps'][1]:g} ps, {est['n_blocks']} blocks")
    if {"gls", "ols-blocks"} <= set(res["estimates"]):
        r = res["estimates"]["ols-blocks"]["t_plus_onsager"][1] / res["estimates"]["gls"]["t_plus_onsager"][1]
        print(f"t+ standard error: ols-blocks / gls = {r:.1f} (the old estimator would need ~{r * r:.0f}x the data)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run (seconds)")
    parser.add_argument("--suite", choices=["transport", "msd-cn", "all"], default="transport",
                        help="transport: diffusion/transference end to end vs MDAnalysis and the raw read (issue 10, "
                             "default, 230 MiB file); msd-cn: the MSD and coordination comparison (3.3 GB at full size)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the trajectory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--n-li", type=int, default=None, help="Li+ (and PF6-) count")
    parser.add_argument("--n-ec", type=int, default=None, help="EC count (>= 4 n_li)")
    parser.add_argument("--n-frames", type=int, default=None)
    parser.add_argument("--box-nm", type=float, default=None)
    parser.add_argument("--sa-frames", type=int, default=None,
                        help="frames given to solvation_analysis (0 = all; full default 300)")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                        help="comma-separated tasks (default: %(default)s); all: " + ",".join(TASKS))
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per task")
    parser.add_argument("--repeat", type=int, default=3,
                        help="transport suite: runs per row, the least CPU time reported (default %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.workdir, Sizes(**json.loads(args.sizes_json)))
        return 0

    if args.suite in ("transport", "all"):
        p = PAIR_QUICK if args.quick else PairSizes()
        if args.n_frames is not None:
            p = PairSizes(**(asdict(p) | {"n_frames": args.n_frames}))
        workdir = Path(tempfile.mkdtemp(prefix="aseimd-bench-")) if args.workdir is None else args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        global PYCACHE_PREFIX
        PYCACHE_PREFIX = workdir / "pycache"
        try:
            res = transport_suite(p, workdir, args.timeout_s, repeat=args.repeat)
            print_transport(res)
            if args.json and args.suite == "transport":
                args.json.write_text(json.dumps(res, indent=2) + "\n")
        finally:
            if args.workdir is None and not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        if args.suite == "transport":
            bad = [k for k, v in res.items() if isinstance(v, dict) and "error" in v]
            return 1 if bad else 0

    base = QUICK if args.quick else FULL
    overrides = {k: v for k, v in {"n_li": args.n_li, "n_ec": args.n_ec, "n_frames": args.n_frames,
                                    "box_nm": args.box_nm, "sa_frames": args.sa_frames}.items() if v is not None}
    s = Sizes(**(asdict(base) | overrides))
    if args.workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="aseimd-bench-"))
        cleanup = not args.keep
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        cleanup = False
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        parser.error(f"unknown task(s) {sorted(unknown)}; allowed: {', '.join(TASKS)}")
    try:
        pdb, dcd, gen_s = generate(s, workdir)
        warm_s = warm_page_cache(dcd)
        if not (s.sa_frames and s.sa_frames < s.n_frames) and "aseimd-cn-subset" in tasks:
            tasks.remove("aseimd-cn-subset")  # solvation_analysis sees all frames: the subset run is the full run
        results = {task: run_child(task, workdir, s, args.timeout_s) for task in tasks}
        comparison = compare(workdir, results, s)
        print_report(s, gen_s, dcd, results, comparison)
        if s.sa_frames and s.sa_frames < s.n_frames:
            print(f"note: solvation_analysis ran on the first {s.sa_frames} of {s.n_frames} frames "
                  "(aseimd's coordination on the same frames for the CN check); compare frames/s")
        doc = {"sizes": asdict(s), "n_atoms": s.n_atoms, "dcd_MiB": dcd.stat().st_size / 2**20,
               "generate_s": gen_s, "page_cache_warm_s": warm_s, "results": results, "comparison": comparison,
               "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
        ok = all("error" not in r for r in results.values()) and all(
            c.get("agree") is not False for c in comparison.values())
        return 0 if ok else 1
    finally:
        if cleanup:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
