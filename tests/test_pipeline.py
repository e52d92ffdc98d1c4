"""The pipeline: build -> run -> analyse one spec; a second call finds everything done in the files."""

import json

import pytest
import yaml
from click.testing import CliRunner

import aseimd.pipeline as pipeline
from aseimd.cli import main
from aseimd.errors import SpecError
from aseimd.pipeline import PipelineSpec, run_pipeline
from aseimd.resources import data_file

TINY_PROTOCOL = yaml.safe_load(data_file("workflows", "tiny-campaign.yaml").read_text())["protocol"]

TINY = {
    "system": {"recipe": "1.0 M LiPF6 in EC", "n_solvent": 30, "cutoff_nm": 0.7},
    "protocol": TINY_PROTOCOL,
    "overrides": ["stages.production.length_steps=400"],
    "analyses": {"diffusion": {}, "transference": {}, "coordination": {}},
    "platform": "CPU", "threads": 1, "deterministic": True,
}


@pytest.mark.parametrize("data, message", [
    ({"system": {"recipe": "1 M LiPF6 in EC", "n_solvent": 30, "box_edge_nm": 2.0}}, "not both"),
    ({"system": {"recipe": "1 M LiPF6 in EC", "n_solvnt": 30}}, "unknown key 'n_solvnt'"),
    ({"system": {"n_solvent": 30}}, "'recipe' must be a recipe string"),
    ({"system": {"kind": "interface", "slab": {}}}, "interface systems need 'electrolyte'"),
    ({"system": {"recipe": "1 M LiPF6 in EC"}, "analyses": ["msd"]}, "unknown analysis 'msd'"),
    ({"system": {"recipe": "1 M LiPF6 in EC"}, "analyses": {"diffusion": {"window": 1}}},
     "analyses diffusion: unknown key 'window'"),
    ({"system": {"recipe": "1 M LiPF6 in EC"}, "threads": 0}, "threads must be a positive integer"),
    ({"system": {"recipe": "1 M LiPF6 in EC"}, "platfrom": "CPU"}, "unknown key 'platfrom'"),
])
def test_bad_specs(data, message):
    with pytest.raises(SpecError, match=message):
        PipelineSpec.from_dict(data)


def test_spec_round_trip_and_fingerprint():
    spec = PipelineSpec.from_dict(TINY)
    assert PipelineSpec.from_dict(spec.to_dict()) == spec
    assert spec.system["seed"] == 0 and spec.system["charge_scale"] == 0.8
    moved = PipelineSpec.from_dict(TINY | {"platform": "CUDA", "threads": None})
    assert moved.fingerprint() == spec.fingerprint()  # same science on another device
    assert PipelineSpec.from_dict(TINY | {"overrides": ["seed=1"]}).fingerprint() != spec.fingerprint()


def _snapshot(job_dir):
    return {str(p.relative_to(job_dir)): p.read_bytes() for p in sorted(job_dir.rglob("*")) if p.is_file()}


def test_pipeline_end_to_end_then_idempotent(tmp_path, monkeypatch):
    from aseimd.analysis.trajectory import Trajectory

    spec = PipelineSpec.from_dict(TINY)
    lines, reads = [], []
    iter_chunks = Trajectory.iter_chunks

    def counted(self, atoms, *args, **kwargs):
        reads.append(len(atoms))
        return iter_chunks(self, atoms, *args, **kwargs)

    monkeypatch.setattr(Trajectory, "iter_chunks", counted)
    first = run_pipeline(spec, tmp_path / "job", progress=False, echo=lambda text, kind: lines.append((kind, text)))
    # one read of every atom for diffusion, transference and coordination together; the automatic g(r)
    # cut-offs of coordination ask for one more pass over its own atoms
    assert len(reads) == 2 and reads[1] < reads[0], reads
    monkeypatch.undo()
    assert first.built and first.run.status == "finished" and first.computed == ("diffusion", "transference",
                                                                                 "coordination")
    job = tmp_path / "job"
    for name in ("system/system.pdb", "system/system.xml", "system/build.json", "run/trajectory.dcd",
                 "run/run.json", "analysis/diffusion.json", "analysis/diffusion_msd.csv",
                 "analysis/diffusion_msd.png", "analysis/transference.json", "analysis/transference_msd.csv",
                 "analysis/coordination.json", "analysis/coordination_rdf.csv", "analysis/coordination_rdf.png"):
        assert (job / name).is_file(), name
    d = json.loads((job / "analysis" / "diffusion.json").read_text())
    assert set(d) >= {"meta", "Li", "PF6", "EC", "method", "warnings"} and d["Li"]["D_m2_per_s"] > 0
    t = json.loads((job / "analysis" / "transference.json").read_text())
    assert t["cation"]["label"] == "Li" and t["anion"]["label"] == "PF6" and t["temperature_K"] == 298.15
    c = json.loads((job / "analysis" / "coordination.json").read_text())
    assert c["mode"] == "default" and c["EC"]["shell"] == "EC"
    assert [k for k, _ in lines if k == "step"] == ["step"] * 5
    assert lines[0] == ("step", f"[1/5] build '1.0 M LiPF6 in EC' (30 solvent molecules) -> {job / 'system'}")

    # the adapter writes exactly what the `aseimd analyze` commands write
    cli, out = CliRunner(), tmp_path / "cli"
    traj = ["--top", str(job / "system" / "system.pdb"), "--traj", str(job / "run" / "trajectory.dcd")]
    for args in (["diffusion", "--group", "Li=resname LI", "--group", "PF6=resname PF6", "--group", "EC=resname EC",
                  "--com"],
                 ["transference", "--cation", "Li=resname LI", "--anion", "PF6=resname PF6", "--temperature-K",
                  "298.15"],
                 ["coordination"]):
        got = cli.invoke(main, ["analyze", args[0], *traj, *args[1:], "--json", str(out / f"{args[0]}.json")])
        assert got.exit_code == 0, got.output
        for path in out.glob(f"{args[0]}*.*"):
            if path.suffix != ".png":
                assert path.read_bytes() == (job / "analysis" / path.name).read_bytes(), path.name

    before = _snapshot(job)
    lines.clear()
    again = run_pipeline(spec, job, progress=False, echo=lambda text, kind: lines.append((kind, text)))
    assert not again.built and again.run.status == "already finished" and again.computed == ()
    assert _snapshot(job) == before  # nothing rewritten
    assert any("exists; reusing it" in text for _, text in lines)
    assert sum("exists; kept" in text for _, text in lines) == 3

    other = PipelineSpec.from_dict(TINY | {"system": TINY["system"] | {"seed": 3}})
    with pytest.raises(SpecError, match="holds a different system"):
        run_pipeline(other, job, progress=False)


def test_quickstart_is_a_thin_wrapper_over_the_pipeline(tmp_path, monkeypatch):
    seen = {}

    def fake(spec, job_dir, **kwargs):
        seen.update(spec=spec, job_dir=job_dir, **kwargs)
        kwargs["echo"]("[1/5] build ...", "step")
        kwargs["echo"]("Warning: not converged", "warning")

    monkeypatch.setattr(pipeline, "run_pipeline", fake)
    got = CliRunner().invoke(main, ["quickstart", "-o", str(tmp_path / "qs"), "--platform", "CPU", "--quiet"])
    assert got.exit_code == 0, got.output
    spec = seen["spec"]
    assert seen["job_dir"] == tmp_path / "qs" and seen["progress"] is False and seen["force"] is False
    assert spec.system == pipeline.interface_system("quickstart") and spec.system["polymer"]["name"] == "PEO"
    assert spec.protocol == "quickstart-interface" and spec.platform == "CPU"
    assert spec.analyses["diffusion"] == {"groups": {"Li": "resname LI"}, "com": True, "layer_edges_nm": "build"}
    assert set(spec.analyses["coordination"]["shells"]) == {"PEO_O", "EC", "DMC", "PF6", "TFSI", "anions"}
    assert list(spec.analyses) == ["diffusion", "coordination", "profile"]
    assert seen["titles"]["coordination"] == "Li+ coordination by PEO ether O, EC and DMC carbonyl O, PF6- F and TFSI- O"
    assert "[1/5] build ..." in got.output and "Done. Plots: " in got.output and "demonstration" in got.output
