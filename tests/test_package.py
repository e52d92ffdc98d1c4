from click.testing import CliRunner

import aseimd
from aseimd.cli import main
from aseimd.resources import data_dir


def test_data_folders_resolve():
    for name in ("forcefields", "systems", "workflows"):
        assert data_dir(name).is_dir()


def test_cli_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert aseimd.__version__ in result.output


def test_version_is_the_installed_distributions():
    # __version__ is written in src/aseimd/__init__.py only; hatch gives it to the distribution
    from importlib.metadata import version

    assert version("aseimd") == aseimd.__version__
