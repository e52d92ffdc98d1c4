"""Campaign spec: matrix expansion, job names, seeds, and one-line errors for bad input (nothing submitted)."""

import json
import os
import stat

import pytest
import yaml
from click.testing import CliRunner

from aseimd.campaign.jobs import prepare_campaign
from aseimd.campaign.spec import CampaignSpec, slug
from aseimd.cli import main
from aseimd.errors import SpecError
from aseimd.resources import data_file

TINY_PROTOCOL = yaml.safe_load(data_file("workflows", "tiny-campaign.yaml").read_text())["protocol"]

BASE = {
    "name": "t",
    "system": {"kind": "electrolyte", "recipe": "1.0 M LiPF6 in EC", "n_solvent": 30, "cutoff_nm": 0.7},
    "matrix": {"electrolyte": {"A": "1.0 M LiPF6 in EC", "B": "1.0 M LiTFSI in PC"},
               "temperature_K": [298.15, 330], "replicas": 2},
    "protocol": TINY_PROTOCOL,
    "set": ["stages.production.length_steps=200"],
    "analyses": ["diffusion", "transference"],
    "platform": {"name": "CPU", "threads": 1, "deterministic": True},
    "executor": "slurm",
    "resources": {"max_parallel": 3, "time": "01:00:00"},
}


def _spec(**changes):
    data = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_matrix_expands_to_the_product_with_readable_stable_names():
    jobs = CampaignSpec.from_dict(_spec()).jobs()
    assert [j.name for j in jobs] == [
        "A_298.15K_r0", "A_298.15K_r1", "A_330K_r0", "A_330K_r1",
        "B_298.15K_r0", "B_298.15K_r1", "B_330K_r0", "B_330K_r1",
    ]
    assert [j.name for j in CampaignSpec.from_dict(_spec()).jobs()] == [j.name for j in jobs]  # stable
    assert {j.chemistry for j in jobs} == {"A_298.15K", "A_330K", "B_298.15K", "B_330K"}
    job = jobs[3]
    assert job.values == {"electrolyte": "1.0 M LiPF6 in EC", "temperature_K": 330, "replicas": 1}
    assert job.pipeline.system["recipe"] == "1.0 M LiPF6 in EC" and job.pipeline.system["seed"] == 1
    protocol = job.pipeline.protocol
    assert protocol["temperature_K"] == 330 and protocol["seed"] == 2026 + 1
    assert protocol["stages"][-1]["length_steps"] == 200
    assert jobs[0].pipeline.fingerprint() != jobs[1].pipeline.fingerprint()  # replicas differ by seed
    assert list(job.pipeline.analyses) == ["diffusion", "transference"]
    assert job.pipeline.platform == "CPU" and job.pipeline.threads == 1 and job.pipeline.deterministic


def test_list_values_get_slug_labels_and_interface_axes_fill_the_interface_spec():
    assert slug("1.0 M LiPF6 in EC:DMC 1:1 v/v") == "1.0M-LiPF6-in-EC-DMC-1-1-v-v"
    data = yaml.safe_load(data_file("workflows", "compare-polymers.yaml").read_text())
    campaign = CampaignSpec.from_dict(data)
    axes = {a.key: a.items for a in campaign.axes}
    assert [label for label, _ in axes["polymer"]] == ["PEO", "PAN", "PDMS", "LiNafion", "bare"]
    system = campaign._system_for({"polymer": "PAN", "electrolyte": "1.0 M LiPF6 in EC:DMC 1:1 v/v"}, 4)
    assert system["polymer"] == {"thickness_nm": 2.0, "n_repeat": 20, "name": "PAN"}
    assert system["electrolyte"] == {"thickness_nm": 4.0, "recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v"}
    assert system["seed"] == 4 and system["slab"]["face"] == "100"
    bare = campaign._system_for({"polymer": None, "electrolyte": "1.0 M LiPF6 in EC"}, 0)
    assert bare["polymer"] is None  # bare Li control
    assert campaign.resources["gpus_per_job"] == 1


@pytest.mark.parametrize("changes, message", [
    ({"matrix": {"solvent": ["EC"]}}, "unknown matrix key 'solvent'; allowed: polymer, electrolyte"),
    ({"matrix": {"polymer": ["PEO"]}}, "matrix key 'polymer' needs system kind: interface"),
    ({"executor": "pbs"}, "unknown executor 'pbs'; allowed: local, slurm"),
    ({"resources": {"gpus": 1}}, "campaign resources: unknown key 'gpus'"),
    ({"resources": {"partition": "gpu\n#SBATCH --x"}}, "no control characters or newlines"),
    ({"resources": {"extra": "--qos=high"}}, "extra must be a list"),
    ({"colour": "red"}, "campaign: unknown key 'colour'"),
    ({"matrix": {"replicas": 0}}, "replicas must be a positive integer"),
    ({"matrix": {"temperature_K": [-5]}}, "must be a positive number"),
    ({"matrix": {"electrolyte": {"a b": "1 M LiPF6 in EC"}}}, "label 'a b' must be"),
    ({"platform": {"name": "TPU"}}, "platform name 'TPU' not allowed"),
    ({"analyses": ["viscosity"]}, "unknown analysis 'viscosity'"),
    ({"system": {"kind": "slab"}}, "kind 'slab' not allowed"),
    ({"matrix": {"electrolyte": ["1.0 M LiPF7 in EC"]}}, "LiPF7"),
    # values the builder would refuse inside the job, refused before anything is submitted
    ({"system": {"recipe": "1.0 M LiPF6 in EC", "n_solvent": 2.5}}, "n_solvent must be a positive integer, got 2.5"),
    ({"system": {"recipe": "1.0 M LiPF6 in EC", "n_solvent": 0}}, "n_solvent must be a positive integer, got 0"),
    ({"system": {"recipe": "1.0 M LiPF6 in EC", "cutoff_nm": -1}}, "cutoff_nm must be a positive number"),
    ({"system": {"recipe": "1.0 M LiPF6 in EC", "n_solvent": 30, "cutoff_nm": 1.2}}, "cutoff"),
    ({"system": {"recipe": "1.0 M LiPF6 in EC", "charge_scale": 1.5}}, "charge_scale must be in (0, 1]"),
    ({"platform": {"name": "CPU", "deterministic": "false"}}, "deterministic must be true or false"),
    ({"directory": 5}, "directory must be a folder path"),
    ({"matrix": []}, "campaign matrix must be a mapping"),
    ({"resources": {"time": "banana"}}, "resources time 'banana' is not a Slurm time limit"),
    ({"resources": {"time": "10", "reserve_s": 600}}, "reserve_s 600 must be shorter than the walltime"),
    ({"analyses": {"transference": {"cation": "Li"}}}, "cation/anion must be [LABEL, SELECTION], got 'Li'"),
])
def test_bad_specs_fail_with_one_line(changes, message):
    with pytest.raises(SpecError) as err:
        CampaignSpec.from_dict(_spec(**changes)).jobs()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_protocol_override_fails_before_anything_is_written(tmp_path):
    with pytest.raises(SpecError, match="no stage named 'nope'"):
        prepare_campaign(CampaignSpec.from_dict(_spec(set=["stages.nope.length_steps=5"])), tmp_path / "c")
    assert not (tmp_path / "c").exists()


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """An ``sbatch`` on PATH that records its arguments (and a ``squeue`` that knows nothing)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch-calls.txt"
    for name, body in (("sbatch", f'printf "%s\\n" "$@" >> "{log}"; echo ---- >> "{log}"; echo 4242\n'),
                       ("squeue", "exit 0\n")):
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("changes, message", [
    ({"matrix": {"temperature": [300]}}, "unknown matrix key 'temperature'"),
    ({"executor": "kubernetes"}, "unknown executor 'kubernetes'"),
    ({"resources": {"walltime": "1:00:00"}}, "unknown key 'walltime'"),
])
def test_cli_bad_input_exit_2_one_line_nothing_submitted(tmp_path, fake_sbatch, changes, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_spec(**changes)))
    got = CliRunner().invoke(main, ["campaign", "submit", str(path), "--dir", str(tmp_path / "camp")])
    assert got.exit_code == 2, got.output
    lines = got.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert not fake_sbatch.exists() and not (tmp_path / "camp").exists()


def test_directory_of_another_campaign_is_refused(tmp_path, fake_sbatch):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump(_spec()))
    second.write_text(yaml.safe_dump(_spec(name="other")))
    cli = CliRunner()
    got = cli.invoke(main, ["campaign", "submit", str(first), "--dir", str(tmp_path / "camp")])
    assert got.exit_code == 0, got.output
    assert "submitted job array 4242 (8 jobs" in got.output
    calls = fake_sbatch.read_text()
    got = cli.invoke(main, ["campaign", "submit", str(second), "--dir", str(tmp_path / "camp")])
    assert got.exit_code == 2
    assert got.output.strip() == (f"Error: directory '{tmp_path / 'camp'}' belongs to campaign 't', not 'other'; "
                                  "choose another --dir")
    assert fake_sbatch.read_text() == calls  # nothing submitted
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("mine")
    got = cli.invoke(main, ["campaign", "submit", str(second), "--dir", str(tmp_path / "plain")])
    assert got.exit_code == 2 and "is not an aseimd campaign directory" in got.output
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["notes.txt"]


def test_changed_job_spec_in_the_same_directory_is_refused(tmp_path):
    prepare_campaign(CampaignSpec.from_dict(_spec()), tmp_path / "c")
    changed = _spec(set=["stages.production.length_steps=300"])
    with pytest.raises(SpecError, match="was made from a different spec"):
        prepare_campaign(CampaignSpec.from_dict(changed), tmp_path / "c")
    # more replicas: the existing jobs are unchanged, new ones are added
    more = _spec(matrix=BASE["matrix"] | {"replicas": 3})
    jobs = prepare_campaign(CampaignSpec.from_dict(more), tmp_path / "c")
    assert len(jobs) == 12
    assert len(json.loads((tmp_path / "c" / "campaign.json").read_text())["jobs"]) == 12


def test_slurm_time_limits_in_every_sbatch_form():
    from aseimd.campaign.spec import slurm_time_limit_s

    assert slurm_time_limit_s("30") == 1800 and slurm_time_limit_s("30:15") == 1815
    assert slurm_time_limit_s("1:00:00") == 3600 and slurm_time_limit_s("2-3") == (2 * 24 + 3) * 3600
    assert slurm_time_limit_s("1-00:30") == 24 * 3600 + 1800 and slurm_time_limit_s("UNLIMITED") is None
    with pytest.raises(SpecError, match="not a Slurm time limit"):
        slurm_time_limit_s("1:2:3:4")


def test_a_failing_squeue_stops_submit_and_status_instead_of_resubmitting(tmp_path, fake_sbatch):
    """squeue that cannot reach the controller: exit 3 and one line; queued jobs are not submitted again."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_spec(matrix={"electrolyte": {"A": "1.0 M LiPF6 in EC"}, "replicas": 2})))
    cli = CliRunner()
    got = cli.invoke(main, ["campaign", "submit", str(path), "--dir", str(tmp_path / "camp")])
    assert got.exit_code == 0, got.output
    calls = fake_sbatch.read_text()
    squeue = fake_sbatch.parent / "bin" / "squeue"
    squeue.write_text("#!/bin/bash\necho 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n"
                      "exit 1\n")
    for command in ("status", "submit"):
        got = cli.invoke(main, ["campaign", command, str(path), "--dir", str(tmp_path / "camp")])
        lines = got.output.strip().splitlines()
        assert got.exit_code == 3 and len(lines) == 1, got.output
        assert "cannot read the Slurm queue" in lines[0] and "Socket timed out" in lines[0]
    assert fake_sbatch.read_text() == calls  # nothing submitted twice
