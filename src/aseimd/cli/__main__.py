"""``python -m aseimd.cli ...``: the same as the ``aseimd`` command."""

import sys

from aseimd.cli import main

sys.exit(main(prog_name="aseimd"))
