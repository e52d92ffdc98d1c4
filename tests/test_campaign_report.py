"""Comparison report: replica means and standard errors against numpy, flags, and the files a person opens."""

import csv
import json
import math

import numpy as np
import pytest

from aseimd.report.compare import JobResults, aggregate, extract, write_comparison


def _write_job(root, name, D, t_ne, t_ons, sigma, cn_ec, cn_dmc, diffusive=True, warnings=(), scn=None):
    a = root / name / "analysis"
    a.mkdir(parents=True)
    (a / "diffusion.json").write_text(json.dumps({
        "meta": {}, "Li": {"D_m2_per_s": D, "D_stderr_m2_per_s": 0.1 * D, "diffusive": diffusive},
        "warnings": []}))
    (a / "transference.json").write_text(json.dumps({
        "t_plus_ne": t_ne, "t_plus_ne_stderr": 0.01, "t_plus_onsager": t_ons, "t_plus_onsager_stderr": 0.05,
        "sigma_eh_S_per_m": sigma, "sigma_eh_stderr_S_per_m": 0.2, "sigma_ne_S_per_m": 1.5 * sigma,
        "sigma_ne_stderr_S_per_m": 0.1, "diffusive": diffusive, "warnings": list(warnings)}))
    shell = {"center": "Li", "cn_molecules": 0.5, "cn_molecules_stderr": 0.05, "cutoff_nm": 0.3}
    (a / "coordination.json").write_text(json.dumps({
        "EC": shell | {"shell": "EC", "cn": cn_ec, "cn_stderr": 0.03},
        "DMC": shell | {"shell": "DMC", "cn": cn_dmc, "cn_stderr": 0.04},
        "PF6": shell | {"shell": "PF6", "cn": 2.0, "cn_stderr": 0.1}, "warnings": []}))
    if scn:
        (a / "solvent_cn.json").write_text(json.dumps({"solvent_cn": scn}))
    (a / "diffusion_msd.csv").write_text("Time (ps),Li MSD (nm^2)\n0.0,0.0\n1.0,0.1\n2.0,0.2\n")
    (a / "coordination_rdf.csv").write_text("r (nm),g(r) EC,n(r) EC\n0.1,0.0,0.0\n0.2,3.0,0.5\n0.3,1.0,1.0\n")
    return JobResults(name, name.rsplit("_", 1)[0], a, {"polymer": name.split("_")[0]})


@pytest.fixture
def jobs(tmp_path):
    d = [1.0e-10, 1.4e-10, 1.3e-10]
    out = [_write_job(tmp_path, f"PEO_r{i}", d[i], 0.3 + 0.01 * i, 0.2 + 0.1 * i, 1.0 + i, 3.0, 1.0 + 0.1 * i)
           for i in range(3)]
    out.append(_write_job(tmp_path, "PAN_r0", 5e-11, 0.4, 0.1, 0.5, 2.0, 1.0, diffusive=False,
                          warnings=["cross term L+- not converged: relative standard error 0.9 > 0.5"],
                          scn={"carbonate_bound_fraction": 0.25, "nitrile_carbonyl_cn": 0.8}))
    return out


def test_replica_mean_and_standard_error(jobs):
    rows = {r.chemistry: r for r in aggregate(jobs)}
    peo = rows["PEO"]
    D = np.array([1.0e-10, 1.4e-10, 1.3e-10])
    assert peo.n_replicas == 3
    assert peo.mean["D_Li_m2_per_s"] == pytest.approx(D.mean())
    assert peo.stderr["D_Li_m2_per_s"] == pytest.approx(D.std(ddof=1) / math.sqrt(3))
    onsager = np.array([0.2, 0.3, 0.4])
    assert peo.stderr["t_plus_onsager"] == pytest.approx(onsager.std(ddof=1) / math.sqrt(3))
    assert peo.mean["cn_Li_O_carbonyl"] == pytest.approx(np.mean([4.0, 4.1, 4.2]))  # EC + DMC carbonyl O
    assert peo.mean["cn_Li_anion"] == pytest.approx(0.5)
    assert math.isnan(peo.mean["carbonate_bound_to_CN"]) and peo.flags == ()
    pan = rows["PAN"]  # one replica: its own block standard error, flagged
    assert pan.mean["t_plus_onsager"] == 0.1 and pan.stderr["t_plus_onsager"] == 0.05
    assert pan.mean["carbonate_bound_to_CN"] == 0.25 and pan.mean["cn_nitrile_carbonyl"] == 0.8
    assert "Li+ MSD not diffusive" in pan.flags and "Onsager cross terms not converged" in pan.flags
    assert "1 replica (block standard errors)" in pan.flags
    assert pan.stderr["cn_Li_O_carbonyl"] == pytest.approx(math.hypot(0.03, 0.04))


def test_missing_analyses_give_blanks_not_errors(tmp_path):
    (tmp_path / "x" / "analysis").mkdir(parents=True)
    e = extract(JobResults("x", "x", tmp_path / "x" / "analysis"))
    assert e.values == {} and e.flags == []


def test_files_a_person_opens(tmp_path, jobs):
    written = write_comparison(jobs, tmp_path / "report", title="Coatings")
    for key in ("csv", "md", "html", "jobs_csv", "bars", "msd", "rdf"):
        assert written[key].stat().st_size > 0
    assert "density_profiles" not in written  # no profile.json in bulk runs
    rows = list(csv.DictReader(open(written["csv"])))
    assert [r["chemistry"] for r in rows] == ["PEO", "PAN"]
    assert float(rows[0]["D_Li_m2_per_s"]) == pytest.approx(np.mean([1.0e-10, 1.4e-10, 1.3e-10]))
    assert rows[0]["D_Li_m2_per_s_n"] == "3" and rows[0]["polymer"] == "PEO"
    md = written["md"].read_text()
    assert "| PEO | 3 | 1.23 ± 0.12 |" in md and "Onsager cross terms not converged" in md
    html = written["html"].read_text()
    assert "<table>" in html and "bars.png" in html
    assert len(list(csv.reader(open(written["jobs_csv"])))) == 5


def test_density_profiles_are_plotted_when_present(tmp_path, jobs):
    doc = {"bin_centers_nm": [0.5, 1.5, 2.5], "groups": {"Li": {"number_density_per_nm3": [0.0, 1.0, 0.5]}}}
    (jobs[0].analysis_dir / "profile.json").write_text(json.dumps(doc))
    written = write_comparison(jobs, tmp_path / "report")
    assert written["density_profiles"].stat().st_size > 0


def test_a_quantity_only_some_replicas_have_carries_its_own_n(tmp_path, jobs):
    """One of three PEO replicas without transference: t+ is that replica's value with its block error, said so."""
    for job in jobs[1:3]:
        (job.analysis_dir / "transference.json").unlink()
    peo = next(r for r in aggregate(jobs) if r.chemistry == "PEO")
    assert peo.n["t_plus_onsager"] == 1 and peo.stderr["t_plus_onsager"] == 0.05  # block SE of PEO_r0
    assert "t+ (Onsager): 1 of 3 replicas (its block standard error)" in peo.flags
    md = write_comparison(jobs, tmp_path / "report")["md"].read_text()
    line = next(x for x in md.splitlines() if x.startswith("| PEO |"))
    assert "| 0.2 ± 0.05 [n=1] |" in line and "1.23 ± 0.12 |" in line  # D: all 3 replicas, no mark


def test_li_anion_cn_counts_every_anion(tmp_path, jobs):
    """Two anion species: their molecule CNs add; a combined anion shell (speciation's pair) is used as it is."""
    path = jobs[0].analysis_dir / "coordination.json"
    doc = json.loads(path.read_text())
    shell = {"center": "Li", "cn": 1.0, "cn_stderr": 0.1, "cutoff_nm": 0.3}
    doc["TFSI"] = shell | {"shell": "TFSI", "cn_molecules": 0.25, "cn_molecules_stderr": 0.02}
    path.write_text(json.dumps(doc))
    e = extract(jobs[0])
    assert e.values["cn_Li_anion"] == pytest.approx(0.75)  # PF6 0.5 + TFSI 0.25
    assert e.stderr["cn_Li_anion"] == pytest.approx(math.hypot(0.05, 0.02))
    doc["anions"] = shell | {"shell": "anions", "cn_molecules": 0.74, "cn_molecules_stderr": 0.03}
    doc["speciation"] = {"anion_pair": "anions"}
    path.write_text(json.dumps(doc))
    e = extract(jobs[0])
    assert e.values["cn_Li_anion"] == 0.74 and e.stderr["cn_Li_anion"] == 0.03


def _fake_campaign(tmp_path, jobs, states):
    """A campaign directory around the fixture's analysis folders, with the given job states."""
    import shutil

    from aseimd.campaign.jobs import CAMPAIGN_FILE, FORMAT

    camp = tmp_path / "camp"
    for job, state in zip(jobs, states, strict=True):
        d = camp / "jobs" / job.name
        shutil.copytree(job.analysis_dir, d / "analysis")
        (d / "job.json").write_text(json.dumps({"chemistry": job.chemistry, "labels": job.labels, "spec": {
            "analyses": {"diffusion": {}, "transference": {}, "coordination": {}}}}))
        (d / "state.json").write_text(json.dumps(state))
    (camp / CAMPAIGN_FILE).write_text(json.dumps({"format": FORMAT, "name": "fake", "jobs": [j.name for j in jobs]}))
    return camp


def test_report_pools_only_finished_jobs_and_names_the_others(tmp_path, jobs):
    from aseimd.campaign import report_campaign

    states = [{"state": "done"}, {"state": "done"},
              {"state": "failed", "stage": "analyse", "failure": {"class": "bad-input"}},
              {"state": "running", "stage": "analyse"}]
    camp = _fake_campaign(tmp_path, jobs, states)
    said = []
    written = report_campaign(camp, echo=said.append)
    rows = list(csv.DictReader(open(written["csv"])))
    assert [r["chemistry"] for r in rows] == ["PEO"]  # PAN's only job is still running its analyses
    D = np.array([1.0e-10, 1.4e-10])  # PEO_r2 failed: not pooled
    assert float(rows[0]["D_Li_m2_per_s"]) == pytest.approx(D.mean())
    assert rows[0]["replicas"] == "2" and rows[0]["D_Li_m2_per_s_n"] == "2"
    assert said == ["left out PEO_r2 (failed: bad-input): its analyses are not final",
                    "left out PAN_r0 (running, stage analyse): its analyses are not final"]
    assert "Not included (not finished): PEO_r2 (failed: bad-input); PAN_r0 (running, stage analyse)." in (
        written["md"].read_text())
    assert written["csv"].parent == camp / "report"
    again = report_campaign(camp, echo=said.append)  # the campaign's own report folder is refreshed
    assert again["csv"].read_text() == written["csv"].read_text()


def test_report_never_replaces_files_aseimd_did_not_write(tmp_path, jobs):
    from aseimd.campaign import report_campaign
    from aseimd.errors import OutputExistsError

    camp = _fake_campaign(tmp_path, jobs, [{"state": "done"}] * 4)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "comparison.csv").write_text("my hand-curated table\n")
    for force in (False, True):
        with pytest.raises(OutputExistsError, match="mine"):
            report_campaign(camp, mine, force=force, echo=lambda _: None)
        assert (mine / "comparison.csv").read_text() == "my hand-curated table\n"
        assert sorted(p.name for p in mine.iterdir()) == ["comparison.csv"]
    fresh = tmp_path / "fresh"
    report_campaign(camp, fresh, echo=lambda _: None)
    with pytest.raises(OutputExistsError, match="--force"):
        report_campaign(camp, fresh, echo=lambda _: None)
    report_campaign(camp, fresh, force=True, echo=lambda _: None)  # its own report: replaced
    report_campaign(camp, echo=lambda _: None)
    (camp / "report" / "notes.txt").write_text("mine")  # a user's file in the campaign's report folder
    with pytest.raises(OutputExistsError, match="notes.txt"):
        report_campaign(camp, echo=lambda _: None)
    assert (camp / "report" / "notes.txt").read_text() == "mine"
