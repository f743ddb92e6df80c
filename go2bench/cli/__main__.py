"""``python -m go2bench.cli``: the ``go2bench`` command."""

from go2bench.cli import main

main(prog_name="go2bench")
