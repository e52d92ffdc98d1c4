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
