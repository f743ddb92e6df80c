"""``python -m go2bench.train ...`` and ``torchrun --nproc_per_node=N -m go2bench.train ...``: ``go2bench train``."""

from go2bench.vintix.cli import train_command

if __name__ == "__main__":
    train_command(prog_name="go2bench train")
