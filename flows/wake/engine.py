"""The model a wake process answers with: the `current` version, loaded again in the background when it moves.

One worker thread runs every generation (mlx-lm's `stream_generate`), one request after another: on a
2-core machine two decodes at once are slower than one after the other, and MLX keeps its streams per
thread. A watcher thread polls `models/CURRENT`; when a sleep or a rollback moved it, the new version is
loaded and verified beside the old one and swapped in with one reference assignment. A request takes the
version it will use when it is submitted and keeps it to its end, so none sees a half-loaded model and
none is interrupted by a swap.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from flows.wake.config import WakeConfig
from storage import registry
from storage.errors import InputError, ModelError, SlowwaveError
from storage.home import Home

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Served:
    """One loaded model version."""

    version: str
    model: Any
    tokenizer: Any
    load_seconds: float


@dataclass(frozen=True)
class Piece:
    """A stretch of a reply; the last one of a job has its finish_reason ("stop" or "length")."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float | None = None
    tokens_per_s: float | None = None


@dataclass
class Job:
    """One reply being generated: its pieces arrive on `pieces`, ended by a final Piece or an exception."""

    served: Served
    prompt: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...] = ()
    seed: int | None = None
    pieces: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def __iter__(self) -> Iterator[Piece]:
        """The pieces in order (blocking), up to and including the final one."""
        while True:
            item = self.pieces.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.finish_reason is not None:
                return


def load_version(home: Home, name: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a registered version, its files checked against the manifest first."""
    from tasks.model.loading import load_model

    return load_model(registry.get(home, name).path, fresh=True)


def ensure_current(home: Home, model_cfg, say: Callable[[str], None] = print) -> str:
    """The current version's name; on a home without one, the base model is pulled and registered first."""
    name = registry.current_name(home)
    if name is not None:
        return name
    from storage.ids import new_run_id
    from storage.lock import command_line, home_lock
    from tasks.model.pull import ensure_model

    with home_lock(home.root, command_line()):
        return ensure_model(home, model_cfg, new_run_id(), say=say).name


def prompt_tokens(tokenizer, messages: Chat, cfg: WakeConfig) -> list[int]:
    """The chat's prompt ids (the model's chat template, ending with the assistant's turn), oldest messages after
    the system message left out until it fits wake.context_tokens; InputError when even the last one does not."""
    chat = list(messages)
    if cfg.system_prompt is not None and not any(m["role"] == "system" for m in chat):
        chat.insert(0, {"role": "system", "content": cfg.system_prompt})
    head = [m for m in chat[:1] if m["role"] == "system"]
    rest = chat[len(head):]
    while True:
        ids = list(tokenizer.apply_chat_template(head + rest, add_generation_prompt=True, tokenize=True))
        if len(ids) <= cfg.context_tokens:
            return ids
        if len(rest) <= 1:
            raise InputError(f"the prompt is {len(ids)} tokens, over wake.context_tokens = {cfg.context_tokens}; "
                             "send a shorter message or raise the setting")
        rest = rest[1:]


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could be the start of a stop string (not shown yet)."""
    return max((k for s in stops for k in range(min(len(s) - 1, len(text)), 0, -1) if s.startswith(text[-k:])),
               default=0)


class Engine:
    """Serves the home's `current` version: `submit` queues a reply, a watcher swaps in a new version."""

    def __init__(self, home: Home, cfg: WakeConfig, *, load: Callable[[Home, str], tuple[Any, Any]] = load_version,
                 say: Callable[[str], None] = print):
        self.home, self.cfg, self._load, self.say = home, cfg, load, say
        self._served: Served | None = None
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._failed: str | None = None  # a version that would not load: not tried again until `current` moves on
        self._threads: list[threading.Thread] = []
        self.swaps: list[tuple[str, str, float]] = []  # (from, to, seconds to load) per swap

    @property
    def served(self) -> Served:
        if self._served is None:
            raise ModelError("the engine has not loaded a model yet (call start first)")
        return self._served

    def start(self, watch: bool = True) -> "Engine":
        """Load the current version (here, before anything is served), then start the worker and the watcher."""
        name = registry.current_name(self.home)
        if name is None:
            raise ModelError(f"no current model version in {self.home.models}; run `slowwave model pull`")
        self._served = self._load_served(name)
        self._threads = [threading.Thread(target=self._work, name="wake-generate", daemon=True)]
        if watch:
            self._threads.append(threading.Thread(target=self._watch, name="wake-swap", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def close(self) -> None:
        """Stop the threads (a reply being generated is cut short)."""
        self._stop.set()
        self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=10)

    def _load_served(self, name: str) -> Served:
        started = time.monotonic()
        model, tokenizer = self._load(self.home, name)
        return Served(name, model, tokenizer, time.monotonic() - started)

    def check_current(self) -> bool:
        """Load and swap in the version `current` names when it is not the one served; True when it swapped."""
        name = registry.current_name(self.home)
        old = self.served.version
        if name is None or name == old or name == self._failed:
            return False
        try:
            new = self._load_served(name)
        except (SlowwaveError, OSError, ValueError, RuntimeError) as exc:  # a damaged or unloadable folder
            self._failed = name
            self.say(f"slowwave: cannot load {name} ({exc}); still serving {old}")
            return False
        self._served = new  # one assignment: a request sees the old version or the new one, never a mix
        self._failed = None
        self.swaps.append((old, name, new.load_seconds))
        self.say(f"now serving {name} (was {old}; loaded and verified in {new.load_seconds:.1f} s)")
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.cfg.swap_poll_seconds):
            try:
                self.check_current()
            except SlowwaveError as exc:  # an unreadable CURRENT: keep serving, say why once per poll
                self.say(f"slowwave: {exc}")

    def submit(self, messages: Chat, *, max_tokens: int | None = None, temperature: float | None = None,
               top_p: float = 1.0, stop: tuple[str, ...] = (), seed: int | None = None) -> Job:
        """Queue a reply to the chat with the version served now; InputError when the prompt does not fit."""
        served = self.served
        job = Job(served, prompt_tokens(served.tokenizer, messages, self.cfg), max_tokens or self.cfg.max_tokens,
                  self.cfg.temperature if temperature is None else temperature, top_p, tuple(s for s in stop if s),
                  seed)
        self._jobs.put(job)
        return job

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set():
                continue
            try:
                self._generate(job)
            except (SlowwaveError, OSError, ValueError, RuntimeError) as exc:  # handed to the request, which reports it
                job.pieces.put(exc)

    def _generate(self, job: Job) -> None:
        import mlx.core as mx
        from mlx_lm import stream_generate
        from mlx_lm.sample_utils import make_sampler

        if job.seed is not None:
            mx.random.seed(job.seed)
        sampler = make_sampler(temp=job.temperature, top_p=job.top_p)
        started = time.monotonic()
        first = None
        text, shown, finish, count, tps = "", 0, "length", 0, None
        for r in stream_generate(job.served.model, job.served.tokenizer, job.prompt, max_tokens=job.max_tokens,
                                 sampler=sampler):
            first = first if first is not None else time.monotonic() - started
            count, tps = r.generation_tokens, r.generation_tps
            if job.cancelled.is_set():  # the client went away: nobody reads the rest
                finish = "stop"
                break
            text += r.text
            cut = min((i for i in (text.find(s) for s in job.stop) if i >= 0), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
                break
            upto = len(text) - _held_back(text, job.stop)
            if upto > shown:
                job.pieces.put(Piece(text[shown:upto]))
                shown = upto
            if r.finish_reason is not None:
                finish = r.finish_reason
                break
        job.pieces.put(Piece(text[shown:], finish, len(job.prompt), count, first, tps))
