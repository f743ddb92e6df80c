"""``torchrun --nproc_per_node=N -m go2bench.cli.train_main ...``: ``go2bench train`` under DDP.

A module of its own (not ``go2bench.cli.train``) so that running it with ``-m`` does not import it
twice through the ``go2bench.cli`` package.
"""

from go2bench.cli.train import train_command

if __name__ == "__main__":
    train_command(prog_name="go2bench train")
