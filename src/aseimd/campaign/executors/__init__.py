"""Executors: where campaign jobs run. ``local`` (this machine, N at once) and ``slurm`` (sbatch job arrays)."""
