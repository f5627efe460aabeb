"""The HTTP API of `slowwave serve`: OpenAI's chat-completions wire format over the engine, every turn logged.

`POST /v1/chat/completions` (whole, or `stream: true` as server-sent events of `chat.completion.chunk`
objects ending with `data: [DONE]`), `GET /v1/models` (the version served), `GET /health`, and the web chat
page at `/`. Errors are OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from flows.wake.engine import Engine, Job, Piece
from flows.wake.sleeper import Sleeper
from storage import registry
from storage.errors import InputError
from storage.session_log import SessionLogs

PAGE = Path(__file__).resolve().parents[1] / "web" / "index.html"
ANY_VERSION = re.compile(r"^v\d{4}$")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of OpenAI's chat-completions request slowwave reads; others (penalties, tools…) are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)
    user: str | None = None


class ApiError(Exception):
    """A request slowwave refuses: an HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def parse_request(raw: bytes) -> ChatRequest:
    """The request body as a ChatRequest; ApiError 400 naming the first bad field (or the JSON error)."""
    try:
        return ChatRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{where or 'body'}: {first['msg']}", param=where) from None


def session_for(request: Request, body: ChatRequest) -> str:
    """The X-Session-Id header, else the request's `user`, else one session per client and local day."""
    given = request.headers.get("x-session-id") or body.user
    if given:
        return given
    client = re.sub(r"[^A-Za-z0-9]+", "-", request.client.host if request.client else "local").strip("-")
    return f"{datetime.now():%Y%m%d}_{client or 'local'}"


def _chunk(job_id: str, created: int, version: str, delta: dict, finish: str | None) -> str:
    body = {"id": job_id, "object": "chat.completion.chunk", "created": created, "model": version,
            "system_fingerprint": version, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _usage(last: Piece) -> dict:
    return {"prompt_tokens": last.prompt_tokens, "completion_tokens": last.completion_tokens,
            "total_tokens": last.prompt_tokens + last.completion_tokens}


def create_app(engine: Engine, logs: SessionLogs, sleeper: Sleeper, say: Callable[[str], None] = print) -> FastAPI:
    """The FastAPI app answering with `engine`, logging to `logs`, telling `sleeper` about every turn."""
    app = FastAPI(title="slowwave", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(error_body(exc.message, exc.kind, exc.param, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return JSONResponse(error_body(f"{where or 'body'}: {first['msg']}", param=where), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return JSONResponse(error_body(f"{request.method} {request.url.path}: {exc.detail}",
                                       "not_found_error" if exc.status_code == 404 else "invalid_request_error"),
                            status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        return {"status": "ok", "version": engine.served.version, "current": registry.current_name(engine.home),
                "swaps": len(engine.swaps), "sleep_running": sleeper.running(), "logged_turns": sleeper.logged}

    @app.get("/v1/models")
    async def models():
        served = engine.served
        created = registry.get(engine.home, served.version).manifest.created_at
        return {"object": "list", "data": [{"id": served.version, "object": "model",
                                            "created": int(created.timestamp()), "owned_by": "slowwave"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = parse_request(await request.body())  # JSON whatever the Content-Type says, as mlx-lm's server
        served = engine.served.version
        if body.model and ANY_VERSION.match(body.model) and body.model != served:
            raise ApiError(404, f"model {body.model!r} is not served: this server answers with the current version "
                           f"({served})", param="model", code="model_not_found")
        if body.messages[-1].role != "user":
            raise ApiError(400, "the last message must be the user's (each user message is logged with its answer)",
                           param="messages")
        try:
            log = logs.get(session_for(request, body))
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
            stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
            job = engine.submit(messages, max_tokens=body.max_completion_tokens or body.max_tokens,
                                temperature=body.temperature, top_p=body.top_p, stop=stops, seed=body.seed)
            turn = log.next_turn()
            log.append(turn, "user", messages[-1]["content"])
        except InputError as exc:
            code = "context_length_exceeded" if "context_tokens" in str(exc) else None
            raise ApiError(400, str(exc), param="messages" if code else "user", code=code) from None
        job_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def finished(reply: str, last: Piece | None) -> None:
            if last is None and not reply.strip():
                return  # nothing was answered (the client left first): the user's line stays unanswered
            log.append(turn, "assistant", reply.strip())
            sleeper.turn_logged()
            if last is None or last.finish_reason is None:
                say(f"{job.served.version} session {log.session_id} turn {turn}: the client left after "
                    f"{len(reply)} characters of the reply; those are logged")
            else:
                say(f"{job.served.version} session {log.session_id} turn {turn}: {last.prompt_tokens} prompt + "
                    f"{last.completion_tokens} reply tokens, first token {last.first_token_s or 0:.2f} s, "
                    f"{last.tokens_per_s or 0:.1f} tokens/s")

        if not body.stream:
            reply, last = "", None
            try:
                async for piece in _pieces(job):
                    reply, last = reply + piece.text, piece
            finally:
                job.cancelled.set()
                finished(reply, last)
            return {"id": job_id, "object": "chat.completion", "created": created, "model": job.served.version,
                    "system_fingerprint": job.served.version,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                 "finish_reason": last.finish_reason, "logprobs": None}],
                    "usage": _usage(last)}

        async def events():
            reply, last = "", None
            version = job.served.version
            try:
                yield _chunk(job_id, created, version, {"role": "assistant", "content": ""}, None)
                async for piece in _pieces(job):
                    reply, last = reply + piece.text, piece
                    if piece.text:
                        yield _chunk(job_id, created, version, {"content": piece.text}, None)
                yield _chunk(job_id, created, version, {}, last.finish_reason)
                if body.stream_options and body.stream_options.include_usage:
                    usage = {"id": job_id, "object": "chat.completion.chunk", "created": created, "model": version,
                             "choices": [], "usage": _usage(last)}
                    yield f"data: {json.dumps(usage)}\n\n"
                yield "data: [DONE]\n\n"
            finally:  # also when the client went away mid-reply: what it was sent is logged
                job.cancelled.set()
                finished(reply, last)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


async def _pieces(job: Job):
    """The job's pieces, waited for off the event loop."""
    while True:
        item = await asyncio.to_thread(job.pieces.get)
        if isinstance(item, BaseException):
            raise item
        yield item
        if item.finish_reason is not None:
            return
