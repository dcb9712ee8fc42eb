"""The harm verdict from a guard model behind any OpenAI-compatible server (our worker, vLLM,
TGI): Llama Guard 3 (1B/8B) by default, ShieldGemma or Granite Guardian as options.

Each format builds the model's own prompt, sends it to ``/v1/completions`` (a raw prompt, so
the server's chat template cannot change it) and reads the answer:

- ``llama_guard_3``: the S1-S14 task prompt of Meta's model card; answers ``safe``, or
  ``unsafe`` and a line of comma-separated codes (``S1,S10``).
- ``shieldgemma``: one prompt per policy (dangerous content, harassment, hate, sexual);
  answers ``Yes`` (violates) or ``No``; each ``Yes`` maps to its S-code.
- ``granite_guardian``: Granite Guardian's risk prompt, one per risk (violence, social bias,
  sexual content, unethical behaviour); answers ``Yes`` or ``No``; each ``Yes`` maps to its S-code.

A hit spans the whole text, scanner ``guard``, score 1.0 (the guard answers in words; where the
server returns the first token's log-probability, that probability). A call that fails, times
out or answers something unreadable raises ``GuardUnavailable``; the runtime then falls back to
the local heads. Every call's latency and outcome go to ``on_call`` (the gateway's metric).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import LLAMA_GUARD_CODES, Category, Direction, Hit

SCANNER = "guard"
Format = Literal["llama_guard_3", "shieldgemma", "granite_guardian"]

LLAMA_GUARD_3_CATEGORIES = (
    "S1: Violent Crimes.",
    "S2: Non-Violent Crimes.",
    "S3: Sex Crimes.",
    "S4: Child Sexual Exploitation.",
    "S5: Defamation.",
    "S6: Specialized Advice.",
    "S7: Privacy.",
    "S8: Intellectual Property.",
    "S9: Indiscriminate Weapons.",
    "S10: Hate.",
    "S11: Suicide & Self-Harm.",
    "S12: Sexual Content.",
    "S13: Elections.",
    "S14: Code Interpreter Abuse.",
)

SHIELDGEMMA_POLICIES: dict[str, tuple[str, Category]] = {
    "dangerous": (
        '"No Dangerous Content": The prompt shall not contain or seek generation of content that harming '
        "oneself and/or others (e.g., accessing or building firearms and explosive devices, promotion of "
        "terrorism, instructions for suicide).",
        Category.VIOLENT_CRIMES,
    ),
    "harassment": (
        '"No Harassment": The prompt shall not contain or seek generation of content that is malicious, '
        "intimidating, bullying, or abusive content targeting another individual (e.g., physical threats, "
        "denial of tragic events, disparaging victims of violence).",
        Category.HATE,
    ),
    "hate": (
        '"No Hate Speech": The prompt shall not contain or seek generation of content that targeting identity '
        "and/or protected attributes (e.g., racial slurs, promotion of discrimination, calls to violence against "
        "protected groups) or dehumanizing/belittling/vilifying on the bases of race, ethnicity, religion, "
        "disability, age, nationality, veteran status, sexual orientation, gender, gender identity, caste, or any "
        "other protected status.",
        Category.HATE,
    ),
    "sexual": (
        '"No Sexually Explicit Information": The prompt shall not contain or seek generation of content that '
        "contains references to sexual acts or other lewd content (e.g., sexually graphic descriptions, content "
        "aimed at causing arousal). Medical or scientific terms related to human anatomy or sex education are "
        "permitted.",
        Category.SEXUAL_CONTENT,
    ),
}

GRANITE_RISKS: dict[str, tuple[str, Category]] = {
    "violence": (
        "The 'User' message contains content promoting or describing physical harm to individuals or groups.",
        Category.VIOLENT_CRIMES,
    ),
    "social_bias": (
        "The 'User' message contains systemic prejudice against groups based on shared identity or characteristics.",
        Category.HATE,
    ),
    "sexual_content": (
        "The 'User' message contains material explicitly related to sexual activities, anatomy, or desires.",
        Category.SEXUAL_CONTENT,
    ),
    "unethical_behavior": (
        "The 'User' message contains actions that violate moral or legal standards.",
        Category.NON_VIOLENT_CRIMES,
    ),
}


class GuardConfig(BaseModel):
    """The ``safety.guard`` section: where the guard model is served and how it is asked."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="base URL of an OpenAI-compatible server (…/v1/completions is called)")
    model: str = Field(description="the model name that server serves the guard under")
    format: Format = "llama_guard_3"
    timeout_s: float = Field(default=2.0, gt=0, description="per call; past it the local heads answer instead")
    api_key: str | None = None
    directions: tuple[Direction, ...] = ("input",)
    shieldgemma_policies: tuple[str, ...] = tuple(SHIELDGEMMA_POLICIES)
    granite_risks: tuple[str, ...] = tuple(GRANITE_RISKS)


class GuardUnavailable(Exception):
    """The guard gave no usable verdict (error, timeout, unreadable answer)."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"guard {outcome}: {detail}")
        self.outcome = outcome  # error | timeout | unparsed


@dataclass(frozen=True)
class Prompt:
    text: str
    category: Category | None = None  # what a positive answer means (formats with one question per category)


def llama_guard_3_prompt(text: str, direction: Direction) -> str:
    role = "User" if direction == "input" else "Agent"
    cats = "\n".join(LLAMA_GUARD_3_CATEGORIES)
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according our safety policy "
        "with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{cats}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{role}: {text}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def shieldgemma_prompt(text: str, policy: str) -> str:
    return (
        "You are a policy expert trying to help determine whether a user prompt is in violation of the defined "
        "safety policies.\n\n<start_of_turn>\n"
        f"Human Question: {text.strip()}\n<end_of_turn>\n\n"
        f"Our safety principle is defined in the below:\n\n* {policy}\n\n"
        "Does the human question violate the above principle? Your answer must start with 'Yes' or 'No'. "
        "And then walk through step by step to be sure we answer correctly.\n"
    )


def granite_guardian_prompt(text: str, risk: str) -> str:
    return (
        "<|start_of_role|>user<|end_of_role|>You are a safety agent trying to help determine whether the user "
        "message is harmful according to the safety risk definition below.\n\n<start_of_turn>\n"
        f"User Message: {text}\n<end_of_turn>\n\n"
        "Our safety risk definition is defined below:\n\n<start_of_risk_definition>\n"
        f"* {risk}\n<end_of_risk_definition>\n\n"
        "Is the user message harmful based on the risk definition? Your answer must be either 'Yes' or 'No'."
        "<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>"
    )


def prompts(cfg: GuardConfig, text: str, direction: Direction) -> list[Prompt]:
    if cfg.format == "llama_guard_3":
        return [Prompt(llama_guard_3_prompt(text, direction))]
    if cfg.format == "shieldgemma":
        return [
            Prompt(shieldgemma_prompt(text, SHIELDGEMMA_POLICIES[p][0]), SHIELDGEMMA_POLICIES[p][1])
            for p in cfg.shieldgemma_policies
        ]
    return [Prompt(granite_guardian_prompt(text, GRANITE_RISKS[r][0]), GRANITE_RISKS[r][1]) for r in cfg.granite_risks]


_CODE = re.compile(r"\bS(1[0-4]|[1-9])\b")


def parse_llama_guard(answer: str) -> list[Category] | None:
    """``safe`` → [], ``unsafe\\nS1,S10`` → [S1, S10]; None when the answer is neither."""
    lines = [ln.strip() for ln in answer.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    head = lines[0].lower()
    if head == "safe":
        return []
    if head != "unsafe":
        return None
    codes = _CODE.findall(" ".join(lines[1:2]))
    cats = [LLAMA_GUARD_CODES[f"S{c}"] for c in dict.fromkeys(codes)]
    return cats or None  # unsafe without a category is not a verdict we can file


def parse_yes_no(answer: str) -> bool | None:
    word = answer.strip().split(maxsplit=1)[0].strip(".,:").lower() if answer.strip() else ""
    return True if word == "yes" else False if word == "no" else None


def _first_token_p(choice: dict[str, Any]) -> float | None:
    lp = choice.get("logprobs") or {}
    values = lp.get("token_logprobs") if isinstance(lp, dict) else None
    if isinstance(values, list) and values and isinstance(values[0], (int, float)):
        return math.exp(values[0])
    return None


class GuardClient:
    """Asks the guard model about one text; ``scan`` returns its hits or raises ``GuardUnavailable``."""

    name = SCANNER

    def __init__(self, cfg: GuardConfig, on_call: Callable[[str, float], None] | None = None) -> None:
        self.cfg = cfg
        self.on_call = (
            on_call if on_call is not None else (lambda outcome, seconds: None)
        )  # (ok | error | timeout | unparsed, seconds)
        self._session: Any = None  # an aiohttp session of the running loop, made on first use

    def wants(self, direction: Direction) -> bool:
        return direction in self.cfg.directions

    async def _complete(self, prompt: str) -> tuple[str, float | None]:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_s))
        headers = {"authorization": f"Bearer {self.cfg.api_key}"} if self.cfg.api_key else {}
        body = {"model": self.cfg.model, "prompt": prompt, "max_tokens": 10, "temperature": 0, "logprobs": 1}
        async with self._session.post(self.cfg.url.rstrip("/") + "/v1/completions", json=body, headers=headers) as r:
            if r.status != 200:
                raise GuardUnavailable("error", f"HTTP {r.status}")
            data = await r.json(content_type=None)
        try:
            choice = data["choices"][0]
            return str(choice["text"]), _first_token_p(choice)
        except (KeyError, IndexError, TypeError) as exc:
            raise GuardUnavailable("unparsed", f"no choices[0].text ({exc!r})") from None

    async def _ask(self, prompt: Prompt, text: str) -> list[Hit]:
        answer, p = await self._complete(prompt.text)
        if self.cfg.format == "llama_guard_3":
            cats = parse_llama_guard(answer)
            if cats is None:
                raise GuardUnavailable("unparsed", repr(answer[:40]))
            score = 1.0 if p is None or not cats else round(p, 4)
            return [Hit(c, f"guard_{self.cfg.format}", SCANNER, 0, len(text), score) for c in cats]
        yes = parse_yes_no(answer)
        if yes is None:
            raise GuardUnavailable("unparsed", repr(answer[:40]))
        assert prompt.category is not None  # yes/no formats ask one question per category
        return (
            [Hit(prompt.category, f"guard_{self.cfg.format}", SCANNER, 0, len(text), 1.0 if p is None else round(p, 4))]
            if yes
            else []
        )

    async def scan(self, text: str, direction: Direction) -> list[Hit]:
        t0 = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                parts = await asyncio.gather(*(self._ask(p, text) for p in prompts(self.cfg, text, direction)))
            return list(dict.fromkeys(h for part in parts for h in part))
        except GuardUnavailable as exc:
            outcome = exc.outcome
            raise
        except (TimeoutError, asyncio.TimeoutError):
            outcome = "timeout"
            raise GuardUnavailable("timeout", f"no answer within {self.cfg.timeout_s} s") from None
        except Exception as exc:  # noqa: BLE001 - any transport or decoding failure is the guard being unavailable
            outcome = "error"
            raise GuardUnavailable("error", type(exc).__name__) from None
        finally:
            self.on_call(outcome, time.perf_counter() - t0)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
