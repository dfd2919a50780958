"""``learnlaw pretrain``: mini-batch AdamW pre-training of a small transformer on JSON lines."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("pretrain")
@click.option(
    "--data",
    required=True,
    type=click.Path(),
    help="Training sequences: JSON lines with 'ids' "
    "(as learnlaw select writes) or with text (tokenised with --tokenizer).",
)
@click.option(
    "--test", "test_path", required=True, type=click.Path(), help="Test sequences, same form."
)
@click.option(
    "--tokenizer",
    type=click.Path(),
    default=None,
    help="tokenizer.json of the sequences. Default: the one beside --data.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    help="TOML config file, or a built-in name (pretrain-small). Default: the built-in defaults.",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config value, e.g. --set train.steps=2000 (repeatable).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (overrides the config).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pretrain_command(
    data, test_path, tokenizer, config_path, out, overrides, resume, device, quiet
):
    """Pre-train with AdamW and a warmup + cosine (or WSD) schedule; log train and test loss.

    Writes curve.csv (step,lr,loss,train_loss,test_loss: `learnlaw law fit` reads it),
    loss.png, model.npz, config.json and metrics.json into --out."""
    from learnlaw.configfile import parse_override
    from learnlaw.pretrain import load_dataset, load_pretrain_config, pretrain

    values = dict(parse_override(o) for o in overrides)
    if device is not None:
        values["device"] = device
    config = load_pretrain_config(config_path, values)
    tok_path = Path(tokenizer) if tokenizer else Path(data).parent / "tokenizer.json"
    train, vocab = load_dataset(Path(data), tok_path)
    test, _ = load_dataset(Path(test_path), tok_path, seq_len=train.shape[1])
    try:
        result = pretrain(
            train,
            test,
            vocab,
            config,
            Path(out),
            resume=resume,
            quiet=quiet,
            data={"train": str(data), "test": str(test_path), "tokenizer": str(tok_path)},
        )
    except KeyboardInterrupt:
        click.echo(f"interrupted; continue with --resume --out {out}", err=True)
        raise SystemExit(130) from None
    m = result.metrics
    click.echo(
        f"pre-trained {m['parameters']:,} parameters for {m['steps']} steps "
        f"({m['tokens']:,} tokens, {m['epochs']:.2f} epochs of {m['train_sequences']} sequences) "
        f"in {m['seconds']:.0f} s"
    )
    click.echo(f"final test loss {m['final_test_loss']:.4f} (train {m['final_train_loss']:.4f})")
    click.echo(f"outputs in {out}/: curve.csv, loss.png, model.npz, config.json, metrics.json")
