"""``go2bench export``: a Vintix training checkpoint as the weights-only file inference loads.

(``go2bench data export-minari``, a dataset export, is :mod:`go2bench.cli.export`.)
"""

from __future__ import annotations

import click

from go2bench.cli.errors import one_line_errors


@click.command("export")
@click.argument("source", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The weights-only checkpoint to write.")
@click.option("--card", type=click.Path(dir_okay=False), default=None,
              help="Also write a model card skeleton (JSON) for it: model, groups, dataset, training filled in from "
                   "the run folder; evaluation and results 'TO FILL'.")
def export_command(source, out, card) -> None:
    """Copy SOURCE (a training run folder or checkpoint file) without its optimizer, schedule and RNG state.

    A run folder gives its final.pt, or the checkpoint its latest.json names. The copy loads with
    go2bench.vintix.inference.load_checkpoint and gives the same actions as SOURCE.
    """
    from pathlib import Path

    from go2bench.core.provenance import check_output_path, write_json_atomic
    from go2bench.vintix.export import export_weights, model_card_skeleton

    with one_line_errors():
        if card is not None:
            check_output_path(card)
        s = export_weights(source, out)
        click.echo(f"{s['out']}: {s['bytes']:,} bytes (from {s['source']}, {s['source_bytes']:,} bytes; step "
                   f"{s['step']}; dropped {', '.join(s['dropped']) or 'nothing'}); sha256 {s['sha256']}")
        if card is not None:
            run_dir = Path(source) if Path(source).is_dir() else Path(s["source"]).parent
            write_json_atomic(card, model_card_skeleton(s["out"], run_dir))
            click.echo(f"{card}: model card skeleton (fill in evaluation and results)")
