"""Comparison of many runs: a table per chemistry (mean ± standard error over replicas) and plots.

Input is one :class:`JobResults` per job (its chemistry label and analysis
directory); nothing here knows about campaigns or Slurm. For each job the
quantities below are read from the analysis JSON files the pipeline wrote:

==========================  ======================================================
``D_Li_m2_per_s``           ``diffusion.json["Li"]["D_m2_per_s"]``
``t_plus_ne``               ``transference.json["t_plus_ne"]``
``t_plus_onsager``          ``transference.json["t_plus_onsager"]``
``sigma_eh_S_per_m``        Einstein-Helfand conductivity (transference.json)
``sigma_ne_S_per_m``        Nernst-Einstein conductivity (transference.json)
``cn_Li_O_carbonyl``        sum of the Li+ CNs of the carbonate carbonyl-O shells (coordination.json)
``cn_Li_anion``             Li+ CN of the anion, molecules (coordination.json)
``carbonate_bound_to_CN``   fraction of carbonate bound to PAN nitrile (solvent_cn.json)
``cn_nitrile_carbonyl``     nitrile-carbonyl CN (solvent_cn.json)
==========================  ======================================================

Per chemistry: with n >= 2 replicas, mean and standard error
``std(ddof=1)/sqrt(n)`` over the replicas; with one replica, its own
block-average standard error from the analysis (marked ``1 replica``).
Convergence flags name what the analyses warned about: a Li+ MSD that is not
diffusive in its fit window, Onsager cross terms that have not converged,
a coordination shell without a cut-off.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aseimd.fileio import atomic_write_text
from aseimd.report.figures import new_figure, save_figure

#: (key, column name, display scale, display unit); values are kept in SI (the key names the unit)
QUANTITIES: tuple[tuple[str, str, float, str], ...] = (
    ("D_Li_m2_per_s", "D(Li+)", 1e-10, "1e-10 m^2/s"),
    ("t_plus_ne", "t+ (NE)", 1.0, ""),
    ("t_plus_onsager", "t+ (Onsager)", 1.0, ""),
    ("sigma_eh_S_per_m", "sigma (Einstein-Helfand)", 1.0, "S/m"),
    ("sigma_ne_S_per_m", "sigma (Nernst-Einstein)", 1.0, "S/m"),
    ("cn_Li_O_carbonyl", "CN Li+-O(carbonyl)", 1.0, "atoms"),
    ("cn_Li_anion", "CN Li+-anion", 1.0, "molecules"),
    ("carbonate_bound_to_CN", "carbonate bound to CN", 1.0, "fraction"),
    ("cn_nitrile_carbonyl", "CN nitrile-carbonyl", 1.0, ""),
)


@dataclass(frozen=True)
class JobResults:
    """One job's analysis directory and the chemistry it belongs to."""

    name: str
    chemistry: str
    analysis_dir: Path
    labels: dict = field(default_factory=dict)


@dataclass
class Extracted:
    """Values, standard errors and flags read from one job's analysis JSON."""

    values: dict[str, float] = field(default_factory=dict)
    stderr: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _num(x) -> float:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else math.nan


def extract(job: JobResults) -> Extracted:
    """Read the comparison quantities of one job (missing analyses give NaN)."""
    from aseimd.species import all_species

    out = Extracted()
    d = _load(job.analysis_dir / "diffusion.json")
    if d and isinstance(d.get("Li"), dict):
        out.values["D_Li_m2_per_s"] = _num(d["Li"].get("D_m2_per_s"))
        out.stderr["D_Li_m2_per_s"] = _num(d["Li"].get("D_stderr_m2_per_s"))
        if d["Li"].get("diffusive") is False:
            out.flags.append("Li+ MSD not diffusive")
    t = _load(job.analysis_dir / "transference.json")
    if t:
        for key, err in (("t_plus_ne", "t_plus_ne_stderr"), ("t_plus_onsager", "t_plus_onsager_stderr"),
                         ("sigma_eh_S_per_m", "sigma_eh_stderr_S_per_m"),
                         ("sigma_ne_S_per_m", "sigma_ne_stderr_S_per_m")):
            out.values[key], out.stderr[key] = _num(t.get(key)), _num(t.get(err))
        if any("not converged" in w for w in t.get("warnings", [])):
            out.flags.append("Onsager cross terms not converged")
        if t.get("diffusive") is False:
            out.flags.append("ion MSDs not diffusive")
    c = _load(job.analysis_dir / "coordination.json")
    if c:
        solvents = {sp.name for sp in all_species() if sp.kind == "solvent"}
        anions = {sp.name for sp in all_species() if sp.kind == "anion"}
        shells = [k for k, v in c.items() if isinstance(v, dict) and "cn" in v and "shell" in v]
        o = [c[k] for k in shells if k in solvents]
        if o:
            out.values["cn_Li_O_carbonyl"] = float(sum(_num(p["cn"]) for p in o))
            out.stderr["cn_Li_O_carbonyl"] = float(math.sqrt(sum(_num(p["cn_stderr"]) ** 2 for p in o)))
        # Li+-anion CN in molecules: a combined anion shell (the label speciation paired with, when it is not one
        # species' own shell) has its own block error; otherwise the species' anion shells are summed (each
        # anion residue belongs to one species, so the molecule counts add) with errors in quadrature.
        pair = (c.get("speciation") or {}).get("anion_pair") if isinstance(c.get("speciation"), dict) else None
        a = [c[pair]] if isinstance(pair, str) and pair in shells and pair not in anions else [
            c[k] for k in shells if k in anions]
        if a:
            out.values["cn_Li_anion"] = float(sum(_num(p.get("cn_molecules")) for p in a))
            out.stderr["cn_Li_anion"] = float(math.sqrt(sum(_num(p.get("cn_molecules_stderr")) ** 2 for p in a)))
        if any(c[k].get("cutoff_nm") is None for k in shells):
            out.flags.append("a Li+ shell without a cut-off")
    s = _load(job.analysis_dir / "solvent_cn.json")
    if s and isinstance(s.get("solvent_cn"), dict):
        scn = s["solvent_cn"]
        out.values["carbonate_bound_to_CN"] = _num(scn.get("carbonate_bound_fraction"))
        out.stderr["carbonate_bound_to_CN"] = _num(scn.get("carbonate_bound_fraction_stderr"))
        out.values["cn_nitrile_carbonyl"] = _num(scn.get("nitrile_carbonyl_cn"))
        out.stderr["cn_nitrile_carbonyl"] = _num(scn.get("nitrile_carbonyl_cn_stderr"))
    return out


@dataclass(frozen=True)
class Row:
    """One chemistry: mean, standard error and number of replicas of every quantity."""

    chemistry: str
    labels: dict
    n_replicas: int
    mean: dict
    stderr: dict
    n: dict
    flags: tuple[str, ...]


def aggregate(jobs: list[JobResults]) -> list[Row]:
    """Group jobs by chemistry (first-seen order) and average over replicas."""
    groups: dict[str, list[tuple[JobResults, Extracted]]] = {}
    for job in jobs:
        groups.setdefault(job.chemistry, []).append((job, extract(job)))
    rows = []
    for chem, members in groups.items():
        mean, err, count, flags = {}, {}, {}, []
        for key, *_ in QUANTITIES:
            vals = np.array([e.values.get(key, math.nan) for _, e in members], dtype=float)
            errs = np.array([e.stderr.get(key, math.nan) for _, e in members], dtype=float)
            ok = np.isfinite(vals)
            count[key] = int(ok.sum())
            if count[key] == 0:
                mean[key] = err[key] = math.nan
            elif count[key] == 1:
                mean[key], err[key] = float(vals[ok][0]), float(errs[ok][0])
            else:
                mean[key] = float(vals[ok].mean())
                err[key] = float(vals[ok].std(ddof=1) / math.sqrt(count[key]))
        for job, e in members:
            flags += [f for f in e.flags if f not in flags]
        if len(members) == 1:
            flags.append("1 replica (block standard errors)")
        else:  # a quantity that only some replicas have: say so, and whose error it carries
            for key, name, *_ in QUANTITIES:
                if count[key] == 1:
                    flags.append(f"{name}: 1 of {len(members)} replicas (its block standard error)")
                elif 1 < count[key] < len(members):
                    flags.append(f"{name}: {count[key]} of {len(members)} replicas")
        rows.append(Row(chem, members[0][0].labels, len(members), mean, err, count, tuple(flags)))
    return rows


def _fmt(mean: float, err: float, scale: float) -> str:
    if not math.isfinite(mean):
        return "-"
    m, e = mean / scale, err / scale
    if not math.isfinite(e):
        return f"{m:.3g}"
    return f"{m:.3g} ± {e:.2g}"


def table_csv(rows: list[Row]) -> str:
    """CSV: one row per chemistry; for each quantity its mean, standard error and n (SI units in headers)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    label_keys = list(dict.fromkeys(k for r in rows for k in r.labels if k != "replicas"))
    header = ["chemistry", *label_keys, "replicas"]
    for key, *_ in QUANTITIES:
        header += [key, f"{key}_stderr", f"{key}_n"]
    w.writerow([*header, "flags"])
    for r in rows:
        line = [r.chemistry, *[r.labels.get(k, "") for k in label_keys], r.n_replicas]
        for key, *_ in QUANTITIES:
            line += [repr(r.mean[key]) if math.isfinite(r.mean[key]) else "",
                     repr(r.stderr[key]) if math.isfinite(r.stderr[key]) else "", r.n[key]]
        w.writerow([*line, "; ".join(r.flags)])
    return buf.getvalue()


def _cell(r: Row, key: str, scale: float) -> str:
    """``mean ± error``, with ``[n=k]`` when fewer replicas than the row's have the quantity."""
    text = _fmt(r.mean[key], r.stderr[key], scale)
    if text != "-" and r.n[key] != r.n_replicas:
        text += f" [n={r.n[key]}]"
    return text


def _present(rows: list[Row]) -> list[tuple[str, str, float, str]]:
    return [q for q in QUANTITIES if any(math.isfinite(r.mean[q[0]]) for r in rows)]


_LEGEND = ("Mean ± standard error over the replicas that have the value (one replica: its block standard "
           "error); n is the chemistry's finished jobs, [n=k] marks a value only k of them have.")


def _left_out_text(left_out) -> str | None:
    if not left_out:
        return None
    return "Not included (not finished): " + "; ".join(f"{name} ({why})" for name, why in left_out) + "."


def table_markdown(rows: list[Row], title: str = "Comparison", left_out: tuple[tuple[str, str], ...] = ()) -> str:
    """Markdown table: mean ± standard error (n replicas), the convergence flags, and the jobs left out."""
    qs = _present(rows)
    head = ["chemistry", "n"] + [f"{name} ({unit})" if unit else name for _, name, _, unit in qs] + ["flags"]
    lines = [f"# {title}", "", _LEGEND, "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.chemistry, str(r.n_replicas)] + [_cell(r, k, s) for k, _, s, _ in qs]
        lines.append("| " + " | ".join(cells + ["; ".join(r.flags) or "-"]) + " |")
    note = _left_out_text(left_out)
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def table_html(rows: list[Row], title: str = "Comparison", images: list[str] = (),
               left_out: tuple[tuple[str, str], ...] = ()) -> str:
    """A self-contained HTML page with the table and the plots."""
    from html import escape

    qs = _present(rows)
    head = ["chemistry", "n"] + [f"{name} ({unit})" if unit else name for _, name, _, unit in qs] + ["flags"]
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
           "<style>body{font-family:sans-serif}td,th{border:1px solid #bbb;padding:3px 8px}"
           "table{border-collapse:collapse}</style></head><body>", f"<h1>{escape(title)}</h1>",
           f"<p>{escape(_LEGEND)}</p><table><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head] + ["</tr>"]
    for r in rows:
        cells = [r.chemistry, str(r.n_replicas)] + [_cell(r, k, s) for k, _, s, _ in qs]
        cells.append("; ".join(r.flags) or "-")
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    note = _left_out_text(left_out)
    if note:
        out.append(f"<p>{escape(note)}</p>")
    out += [f"<h2>{escape(Path(i).stem)}</h2><img src='{escape(i)}'>" for i in images]
    out.append("</body></html>\n")
    return "\n".join(out)


def plot_bars(rows: list[Row], path: Path) -> Path:
    """One panel per quantity: a bar per chemistry with its standard error."""
    qs = _present(rows)
    ncol = min(3, max(1, len(qs)))
    nrow = max(1, math.ceil(len(qs) / ncol))
    fig, ax = new_figure(figsize=(4.2 * ncol, 3.2 * nrow))
    fig.delaxes(ax)
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    x = np.arange(len(rows))
    for a, (key, name, scale, unit) in zip(axes, qs, strict=False):
        m = np.array([r.mean[key] for r in rows]) / scale
        e = np.array([r.stderr[key] for r in rows]) / scale
        a.bar(x, np.nan_to_num(m), yerr=np.where(np.isfinite(e), e, 0.0), capsize=3, color="C0")
        a.set_xticks(x, [r.chemistry for r in rows], rotation=30, ha="right", fontsize=7)
        a.set_title(f"{name} ({unit})" if unit else name, fontsize=9)
    for a in axes[len(qs):]:
        a.set_visible(False)
    return save_figure(fig, path)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray] | None:
    try:
        with open(path) as fh:
            header = next(csv.reader(fh))
        return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (FileNotFoundError, StopIteration, ValueError):
        return None


def _mean_curve(jobs: list[JobResults], filename: str, column) -> tuple[np.ndarray, np.ndarray] | None:
    curves = []
    for job in jobs:
        got = _read_csv(job.analysis_dir / filename)
        if got is None:
            continue
        header, data = got
        col = column(header)
        if col is not None:
            curves.append((data[:, 0], data[:, col]))
    if not curves:
        return None
    n = min(c[0].size for c in curves)
    return curves[0][0][:n], np.mean([c[1][:n] for c in curves], axis=0)


def plot_msd(jobs: list[JobResults], path: Path) -> Path | None:
    """Li+ MSD of every chemistry (mean over its replicas), log-log."""
    fig, ax = new_figure()
    drawn = False
    for chem, members in _by_chemistry(jobs).items():
        got = _mean_curve(members, "diffusion_msd.csv",
                          lambda h: h.index("Li MSD (nm^2)") if "Li MSD (nm^2)" in h else None)
        if got is None:
            continue
        t, msd = got
        ok = (t > 0) & (msd > 0)
        ax.loglog(t[ok], msd[ok], lw=1.2, label=chem)
        drawn = True
    if not drawn:
        return None
    ax.set_xlabel("Time (ps)")
    ax.set_ylabel("Li+ MSD (nm^2)")
    ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, path)


def plot_rdf(jobs: list[JobResults], path: Path) -> Path | None:
    """Li+ g(r) of the first carbonate carbonyl-O shell and of the anion, per chemistry (replica mean)."""
    fig, ax = new_figure()
    drawn = False
    for chem, members in _by_chemistry(jobs).items():
        got = _read_csv(members[0].analysis_dir / "coordination_rdf.csv")
        if got is None:
            continue
        for col_name in [h for h in got[0] if h.startswith("g(r) ")][:2]:
            curve = _mean_curve(members, "coordination_rdf.csv",
                                lambda h, c=col_name: h.index(c) if c in h else None)
            if curve is not None:
                ax.plot(*curve, lw=1.1, label=f"{chem}: Li–{col_name[5:]}")
                drawn = True
    if not drawn:
        return None
    ax.set_xlabel("r (nm)")
    ax.set_ylabel("g(r)")
    ax.legend(fontsize=6, frameon=False)
    return save_figure(fig, path)


def plot_profiles(jobs: list[JobResults], path: Path) -> Path | None:
    """Number density profiles along z of every group, one panel per chemistry (first replica)."""
    chems = [(chem, members) for chem, members in _by_chemistry(jobs).items()
             if _load(members[0].analysis_dir / "profile.json")]
    if not chems:
        return None
    fig, ax = new_figure(figsize=(6.0, 2.4 * len(chems)))
    fig.delaxes(ax)
    axes = np.atleast_1d(fig.subplots(len(chems), 1, sharex=True))
    for a, (chem, members) in zip(axes, chems, strict=True):
        doc = _load(members[0].analysis_dir / "profile.json")
        z = np.asarray(doc["bin_centers_nm"])
        for label, g in doc["groups"].items():
            a.plot(z, g["number_density_per_nm3"], lw=1.0, label=label)
        a.set_title(chem, fontsize=8)
        a.set_ylabel("n (1/nm^3)")
        a.legend(fontsize=6, frameon=False, ncol=3)
    axes[-1].set_xlabel("z (nm)")
    return save_figure(fig, path)


def _by_chemistry(jobs: list[JobResults]) -> dict[str, list[JobResults]]:
    out: dict[str, list[JobResults]] = {}
    for job in jobs:
        out.setdefault(job.chemistry, []).append(job)
    return out


def per_job_csv(jobs: list[JobResults]) -> str:
    """CSV of every job's own values and standard errors (the replicas behind the table)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["job", "chemistry"]
    for key, *_ in QUANTITIES:
        header += [key, f"{key}_stderr"]
    w.writerow([*header, "flags"])
    for job in jobs:
        e = extract(job)
        line = [job.name, job.chemistry]
        for key, *_ in QUANTITIES:
            v, s = e.values.get(key, math.nan), e.stderr.get(key, math.nan)
            line += [repr(v) if math.isfinite(v) else "", repr(s) if math.isfinite(s) else ""]
        w.writerow([*line, "; ".join(e.flags)])
    return buf.getvalue()


#: Every file :func:`write_comparison` may write (the report directory holds nothing else).
REPORT_FILES = ("bars.png", "msd.png", "rdf.png", "density_profiles.png", "comparison.csv", "jobs.csv",
                "comparison.md", "comparison.html")


def write_comparison(jobs: list[JobResults], out_dir: str | Path, title: str = "Comparison",
                     left_out: tuple[tuple[str, str], ...] = ()) -> dict[str, Path]:
    """Write ``comparison.csv|md|html``, ``jobs.csv`` and the plots into ``out_dir``; returns the paths.

    ``left_out``: ``(job, why)`` of the jobs not included (named under the Markdown and HTML tables).
    """
    out_dir = Path(out_dir)
    rows = aggregate(jobs)
    written: dict[str, Path] = {}
    plots = {"bars": lambda p: plot_bars(rows, p), "msd": lambda p: plot_msd(jobs, p),
             "rdf": lambda p: plot_rdf(jobs, p), "density_profiles": lambda p: plot_profiles(jobs, p)}
    for name, plot in plots.items():
        got = plot(out_dir / f"{name}.png")
        if got is not None:
            written[name] = got
    written["csv"] = atomic_write_text(out_dir / "comparison.csv", table_csv(rows))
    written["jobs_csv"] = atomic_write_text(out_dir / "jobs.csv", per_job_csv(jobs))
    written["md"] = atomic_write_text(out_dir / "comparison.md", table_markdown(rows, title, left_out))
    images = [written[k].name for k in plots if k in written]
    written["html"] = atomic_write_text(out_dir / "comparison.html", table_html(rows, title, images, left_out))
    return written
