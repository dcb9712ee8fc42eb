"""The OpenAI operations the gateway serves, each with its path (the same on the gateway and
on the upstream), its request model and the body field that holds its prompt."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from inference import protocol as p


class Operation(StrEnum):
    """The value is the operation's name as recorded (`gen_ai.operation.name`)."""

    path: str
    request_model: type[BaseModel]
    prompt_field: str

    def __new__(cls, name: str, path: str, request_model: type[BaseModel], prompt_field: str) -> Operation:
        op = str.__new__(cls, name)
        op._value_ = name
        op.path, op.request_model, op.prompt_field = path, request_model, prompt_field
        return op

    CHAT = "chat", "/v1/chat/completions", p.ChatCompletionRequest, "messages"
    TEXT_COMPLETION = "text_completion", "/v1/completions", p.CompletionRequest, "prompt"
    EMBEDDINGS = "embeddings", "/v1/embeddings", p.EmbeddingRequest, "input"


BY_PATH: dict[str, Operation] = {op.path: op for op in Operation}
