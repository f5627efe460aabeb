"""Loading a registered model version for the stages that need one (verified first, MLX imported late)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

from tasks.model.blas import ensure_fast_blas
from tasks.model.threads import apply_threads


@lru_cache(maxsize=2)
def _load(path: str, adapter: str | None):
    ensure_fast_blas()  # before MLX is imported in this process
    from mlx_lm import load

    return load(path, adapter_path=adapter) if adapter else load(path)


def load_model(model_dir: Path, *, adapter_dir: Path | None = None, verify: bool = True, fresh: bool = False):
    """(model, tokenizer) from an mlx-lm folder; registered folders are sha256-verified before loading.

    Loaded models are shared within the process for inference; training asks for a `fresh` copy
    because it adds LoRA layers in place.
    """
    from storage.registry import MANIFEST, verify_folder

    for folder in (model_dir, adapter_dir):
        if verify and folder is not None and (folder / MANIFEST).exists():
            verify_folder(folder)
    args = (str(model_dir), str(adapter_dir) if adapter_dir else None)
    loaded = _load.__wrapped__(*args) if fresh else _load(*args)
    apply_threads()  # the work about to start gets the cores other work leaves free
    return loaded


def chat_formatter(tokenizer) -> Callable[[list[dict]], str]:
    """A function turning chat messages into training text (the model's template, no generation prompt)."""
    def fmt(messages: list[dict]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    return fmt
