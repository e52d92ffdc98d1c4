"""CLI: ``aseimd campaign run|submit|status|report CAMPAIGN.yaml`` (thin layer over :mod:`aseimd.campaign`)."""

from __future__ import annotations

import click

_dir_option = click.option("--dir", "directory", default=None, type=click.Path(file_okay=False),
                           help="Campaign directory [default: the spec's 'directory', else ./NAME].")
_retry_option = click.option("--retry-failed", is_flag=True, help="Also start jobs that failed before.")


@click.group("campaign")
def campaign() -> None:
    """Many runs from one spec (polymer x electrolyte x temperature x replicas), compared at the end.

    \b
    aseimd campaign run tiny-campaign            # here, now (local executor)
    aseimd campaign submit compare-polymers.yaml # Slurm job arrays (requeue at walltime)
    aseimd campaign status compare-polymers.yaml
    aseimd campaign report compare-polymers.yaml # table (CSV, Markdown, HTML) and plots
    """


@campaign.command("run")
@click.argument("spec")
@_dir_option
@click.option("-j", "--max-parallel", type=click.IntRange(min=1), default=None,
              help="Jobs at once [default: resources.max_parallel].")
@_retry_option
def run(spec, directory, max_parallel, retry_failed):
    """Run the campaign's jobs on this machine (one GPU per job when there are GPUs)."""
    from aseimd.campaign import run_campaign
    from aseimd.campaign.status import campaign_status, format_status

    path, codes = run_campaign(spec, directory, max_parallel=max_parallel, retry_failed=retry_failed,
                               echo=click.echo)
    click.echo(format_status(campaign_status(path)))
    if any(code != 0 for code in codes.values()):
        raise SystemExit(1)


@campaign.command("submit")
@click.argument("spec")
@_dir_option
@_retry_option
def submit(spec, directory, retry_failed):
    """Submit the jobs that need work as one Slurm job array (nothing when all are done or queued)."""
    from aseimd.campaign import submit_campaign

    submit_campaign(spec, directory, retry_failed=retry_failed, echo=click.echo)


def _directory(spec, directory):
    from aseimd.campaign.spec import CampaignSpec

    return CampaignSpec.load(spec).directory_path(directory)


@campaign.command("status")
@click.argument("spec")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(spec, directory, as_json):
    """Each job's stage, progress, state, ns/day and predicted completion (job files + squeue)."""
    from aseimd.campaign import campaign_status
    from aseimd.campaign.status import format_status
    from aseimd.fileio import dumps_json

    rows = campaign_status(_directory(spec, directory))
    click.echo(dumps_json([r.to_dict() for r in rows]) if as_json else format_status(rows))


@campaign.command("report")
@click.argument("spec")
@_dir_option
@click.option("-o", "--output", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Report directory [default: CAMPAIGN_DIR/report, refreshed on every call].")
@click.option("--force", is_flag=True, help="Replace an existing -o DIR (only a report aseimd wrote).")
def report(spec, directory, out_dir, force):
    """Comparison per chemistry of the finished jobs: mean ± standard error over replicas, flags, plots."""
    from aseimd.campaign import report_campaign

    written = report_campaign(_directory(spec, directory), out_dir, force=force, echo=click.echo)
    click.echo("wrote " + ", ".join(str(p) for p in written.values()))


COMMANDS: list[click.Command] = [campaign]
