"""``hotline orders``: suggested classification of order texts, and replacing the court's taxonomy."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
import yaml

from hotline.cli_db import ConfigOption, fail, load
from work_orders import classify
from work_orders import taxonomy as tx
from work_orders.embedding import EmbeddingError

orders_app = typer.Typer(help="Work orders: suggested classification, the taxonomy.", no_args_is_help=True)
taxonomy_app = typer.Typer(help="The subcategory tree and tags orders are classified with.", no_args_is_help=True)
orders_app.add_typer(taxonomy_app, name="taxonomy")


@orders_app.command("classify")
def classify_cmd(texts: Annotated[list[str] | None, typer.Argument(
        metavar="[TEXT]...", help="Texts to classify; none: one text per line on stdin.")] = None,
                 config: ConfigOption = None) -> None:
    """Suggest category, subcategory path and tags for each text: one JSON line per text
    ({"text", "category", "path", "tags", "confidence"}), the suggestion the forms are pre-filled with."""
    s = load(config)
    items = list(texts or []) or [line.strip() for line in sys.stdin]
    try:
        taxonomy = tx.load(tx.court_file(s.work_orders.taxonomy_file, s.home))
        clf = classify.for_taxonomy(taxonomy)
    except (tx.TaxonomyError, EmbeddingError, ValueError) as e:
        raise fail(str(e), 2) from None
    for text in items:
        if not text.strip():
            continue
        g = clf.classify(text)
        typer.echo(json.dumps({"text": text, "category": g.category, "path": g.path, "tags": g.tags,
                               "confidence": round(g.confidence, 3)}, ensure_ascii=False))


@taxonomy_app.command("import")
def import_cmd(file: Annotated[Path, typer.Argument(metavar="FILE", help="YAML taxonomy (see the bundled one).",
                                                    dir_okay=False)],
               config: ConfigOption = None) -> None:
    """Check FILE and make it the court's taxonomy (work_orders.taxonomy_file, else <home>/taxonomy.yaml);
    a bad file is refused with the entry named, and nothing changes."""
    s = load(config)
    try:
        text = file.read_text(encoding="utf-8")
        new = tx.parse(yaml.safe_load(text) or {}, str(file))
    except OSError as e:
        raise fail(f"cannot read {file}: {e}", 1) from None
    except UnicodeDecodeError:
        raise fail(f"{file}: not UTF-8 text", 1) from None
    except yaml.YAMLError as e:
        raise fail(f"{file}: not valid YAML: {e}", 1) from None
    except tx.TaxonomyError as e:
        raise fail(str(e), 1) from None
    counts = new.counts()
    if len(counts) < 2 or not new.tags:
        raise fail(f"{file}: a taxonomy needs subcategories and tags (found {counts}, {len(new.tags)} tags)", 1)
    target = Path(s.work_orders.taxonomy_file or Path(s.home) / tx.IMPORTED_NAME)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".taxonomy-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, target)  # atomic: the hub reads the old file or the new one, never half of one
    levels = " / ".join(str(n) for n in counts)
    typer.echo(f"imported {file} -> {target}: {levels} nodes per level, {len(new.tags)} tags")
    if s.work_orders.taxonomy_file is None:
        typer.echo("(work_orders.taxonomy_file is unset: the hub uses this file from its next start)")
