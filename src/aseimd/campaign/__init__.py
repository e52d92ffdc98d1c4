"""Campaigns: many pipeline jobs from one spec, run here or on Slurm, compared at the end.

Public entry points (the ``aseimd campaign`` commands are thin wrappers)::

    run_campaign(spec_path, directory=None)        # local executor, here, now
    submit_campaign(spec_path, directory=None)     # the spec's executor (slurm: sbatch arrays)
    campaign_status(directory)                     # from the job files and squeue
    report_campaign(directory)                     # comparison table and plots
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aseimd.errors import OutputExistsError, SpecError


def _prepare(spec_path, directory):
    from aseimd.campaign.jobs import prepare_campaign
    from aseimd.campaign.spec import CampaignSpec

    campaign = CampaignSpec.load(spec_path)
    path = campaign.directory_path(directory)
    jobs = prepare_campaign(campaign, path)
    return campaign, path, jobs


def _to_start(path: Path, jobs, retry_failed: bool) -> list[str]:
    from aseimd.campaign.jobs import JobDir
    from aseimd.campaign.status import campaign_status, needs_work

    names = {j.name for j in jobs}
    todo = [s.name for s in campaign_status(path) if s.name in names and needs_work(s, retry_failed)]
    if retry_failed:
        for name in todo:
            job = JobDir(path / "jobs" / name)
            state = job.state
            if state.get("state") == "failed":
                job.write_state(state | {"state": "new", "failure": None,
                                         "retried_failure": state.get("failure")})
    return todo


def run_campaign(spec_path: str | Path, directory: str | Path | None = None, *, max_parallel: int | None = None,
                 retry_failed: bool = False, echo: Callable[[str], None] = print) -> tuple[Path, dict[str, int]]:
    """Run every job that needs work on this machine (``resources.max_parallel`` at once)."""
    from aseimd.campaign.executors.local import run_local

    campaign, path, jobs = _prepare(spec_path, directory)
    todo = _to_start(path, jobs, retry_failed)
    if not todo:
        echo(f"nothing to run: all {len(jobs)} jobs of {campaign.name} are done, queued or failed ({path})")
        return path, {}
    r = campaign.resources
    codes = run_local(path, todo, max_parallel=max_parallel or r["max_parallel"], gpus_per_job=r["gpus_per_job"],
                      echo=echo)
    return path, codes


def submit_campaign(spec_path: str | Path, directory: str | Path | None = None, *, retry_failed: bool = False,
                    sbatch: str = "sbatch", echo: Callable[[str], None] = print) -> tuple[Path, str | None]:
    """Hand every job that needs work to the spec's executor; returns the Slurm array id (or None).

    Jobs that are done, queued or running are left alone, so a second submit submits nothing.
    """
    from aseimd.campaign.executors.slurm import submit_array
    from aseimd.campaign.spec import CampaignSpec

    campaign = CampaignSpec.load(spec_path)
    if campaign.executor == "local":
        path, _ = run_campaign(spec_path, directory, retry_failed=retry_failed, echo=echo)
        return path, None
    import shutil

    if shutil.which(sbatch) is None:
        raise SpecError(f"executor slurm needs {sbatch!r} on PATH; it is not (use 'aseimd campaign run' here)")
    campaign, path, jobs = _prepare(spec_path, directory)
    todo = _to_start(path, jobs, retry_failed)
    if not todo:
        echo(f"nothing to submit: all {len(jobs)} jobs of {campaign.name} are done, queued or failed ({path})")
        return path, None
    return path, submit_array(path, campaign.name, campaign.resources, todo, sbatch=sbatch, echo=echo)


def campaign_status(directory: str | Path):
    """Status rows of every job (see :mod:`aseimd.campaign.status`)."""
    from aseimd.campaign.status import campaign_status as _status

    return _status(Path(directory))


def report_campaign(directory: str | Path, out_dir: str | Path | None = None, *, force: bool = False,
                    echo: Callable[[str], None] = print) -> dict[str, Path]:
    """Write the comparison (table CSV/Markdown/HTML and plots) of every finished job.

    Only jobs whose state is ``done`` with every analysis written are pooled: a failed job, or one still
    running its analyses, has a partial ``analysis/`` folder whose numbers must not enter a replica mean; the
    jobs left out are named (``echo`` and under the tables). The report is written as a whole into a staged
    folder and moved into place: the campaign's own ``DIR/report`` is refreshed on every call, an ``out_dir``
    that exists needs ``force``, and either is replaced only when it holds nothing but a report aseimd wrote.
    """
    import json

    from aseimd.campaign.jobs import job_dirs
    from aseimd.fileio import read_marker, replace_problem, staged_directory, write_marker
    from aseimd.report.compare import REPORT_FILES, JobResults, write_comparison

    directory = Path(directory)
    jobs = job_dirs(directory)  # refuses a folder that is not a campaign directory
    results, left_out = [], []
    for job in jobs:
        info, state = job.info, job.state
        recorded = state.get("state", "new")
        if recorded == "done" and job.analyses_done():
            results.append(JobResults(job.name, info.get("chemistry", job.name), job.path / "analysis",
                                      info.get("labels", {})))
        elif (job.path / "analysis").is_dir():
            failure = (state.get("failure") or {}).get("class")
            why = f"failed: {failure}" if recorded == "failed" else (
                f"{recorded}, stage {state.get('stage')}" if state.get("stage") else recorded)
            left_out.append((job.name, why))
    for name, why in left_out:
        echo(f"left out {name} ({why}): its analyses are not final")
    if not results:
        raise SpecError(f"no job in {str(directory)!r} has finished with its analyses yet; see 'aseimd campaign "
                        f"status'")
    name = json.loads((directory / "campaign.json").read_text()).get("name", directory.name)
    target = Path(out_dir) if out_dir else directory / "report"
    own = out_dir is None
    if own and target.is_dir() and read_marker(target) is None and any(target.iterdir()) and all(
            p.name in REPORT_FILES and p.is_file() for p in target.iterdir()):
        write_marker(target, "campaign-report", [p.name for p in target.iterdir()])  # a report from before markers
    if own and target.exists():
        problem = replace_problem(target, "campaign-report", REPORT_FILES)
        if problem is not None:
            raise OutputExistsError(f"cannot refresh {target}: {problem}; move those files or give -o DIR")
    with staged_directory(target, force=force or own, kind="campaign-report", files=REPORT_FILES) as tmp:
        written = write_comparison(results, tmp, title=f"Campaign {name}", left_out=tuple(left_out))
    return {key: target / path.name for key, path in written.items()}
