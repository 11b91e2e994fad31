"""`pocketvec data preview`: a contact sheet of simulated phone photos of an item folder."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import choices, ranged
from pocketvec.data.photo_framing import DEFAULT_FRAMING, FRAMINGS

app = typer.Typer(help="Item data: public sets and phone-photo previews. Example: pocketvec data list",
                  no_args_is_help=True)


@app.command("preview")
def preview_command(
    items: Path = typer.Argument(None, help="Item folder or CSV manifest (default: the embedded demo items)."),
    out: Path = typer.Option(Path("augment_preview.png"), "--out", help="PNG contact sheet to write."),
    n: int = typer.Option(24, "--n", min=1, max=400, help="Number of samples."),
    seed: int = ranged.option(0, "--seed", key="seed", help="Random seed: the same seed gives the same sheet."),
    size: int = typer.Option(224, "--size", min=32, max=1024, help="Side of each simulated photo in pixels."),
    strength: float = typer.Option(1.0, "--strength", help="Augmentation strength (0 clean, 1 default, 2 harsh)."),
    backgrounds: Path = typer.Option(
        None, "--backgrounds", help="Folder of background photos (default: cached wallpapers, else embedded)."
    ),
) -> None:
    """Write a contact sheet of augmented samples to look at.

    Example: pocketvec data preview items/ --out sheet.png --n 24 --seed 0 --size 224
    """
    from pocketvec.asset_dirs import demo_items_dir
    from pocketvec.data.items import load_items
    from pocketvec.output_paths import check_output_file

    from .output import console, safe

    check_output_file(out, "--out")
    dataset = load_items(items if items is not None else demo_items_dir())  # fail fast, before heavy imports
    from pocketvec.data.augment import AugmentConfig, PhoneAugment
    from pocketvec.data.preview import contact_sheet, save_png_atomic

    augment = PhoneAugment(AugmentConfig(strength=strength), size, backgrounds=backgrounds)
    skipped: list = []
    with console.status(f"simulating {n} phone photos of {len(dataset.labels)} items"):
        sheet = contact_sheet(dataset, augment, n=n, seed=seed, skipped=skipped)
    save_png_atomic(sheet, out)
    console.print(f"wrote {safe(out)} ({n} samples, {len(dataset.labels)} items, seed {seed})")
    if skipped:
        for error in skipped:
            console.print(f"[yellow]skipped[/] {safe(error)}", highlight=False)
        raise typer.Exit(1)


@app.command("photos")
def photos_command(
    items: Path = typer.Argument(..., help="Item folder or CSV manifest (one image per item, or several)."),
    out: Path = typer.Option(..., "--out", help="Folder to write: one sub-folder of photos per label."),
    per_item: int = typer.Option(8, "--per-item", min=1, help="Photos per item image (and per distractor image)."),
    distractors: Path = typer.Option(None, "--distractors",
                                     help="Folder of images of things that are NOT enrolled; their photos go to "
                                          "not_an_item/ and count as 'should be unknown'."),
    seed: int = ranged.option(0, "--seed", key="seed", help="The same seed gives the same photos."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
    framing: str = choices.option(DEFAULT_FRAMING, "--framing", what="framing", choices=FRAMINGS,
                                  help="phone: 3:4 or 9:16 at 640 px, held portrait or landscape whatever the item "
                                       "(as users take them); item: 4:3 along the item, 480 px (the benchmark's)."),
) -> None:
    """Simulated phone photos of your items, labelled, for `calibrate` and `eval`.

    Made by the benchmark photo simulator (not the training augmentation, so they do not flatter
    the model). Example: pocketvec data photos items/ --out photos/ --per-item 8 --distractors other/
    """
    from pocketvec.data.query_photos import NOT_AN_ITEM, write_query_photos

    from .output import console, safe, settings

    result = write_query_photos(items, out, per_item, distractors, seed, overwrite, settings.progress, framing)
    console.print(f"wrote {result.item_photos} photos of {result.items} items"
                  + (f" and {result.distractor_photos} of {result.distractor_images} distractors "
                     f"(under {NOT_AN_ITEM}/)" if result.distractor_images else "")
                  + f" to {safe(out)}", highlight=False)
