"""Shared pieces of the spec parsers: the error type and the field parsers."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from slo.model import TimeWindow
from slo.yamlloc import line_at

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = {"le", "severity", "alertname", "status_class", "error_type", "direction"}
MIN_PERIOD_DAYS, MAX_PERIOD_DAYS = 7, 90


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class SpecError(ValueError):
    """An invalid SLO spec; `str()` lists every problem as `file:line: message`."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(map(str, self.issues)))

    @property
    def file(self) -> str:
        return self.issues[0].file

    @property
    def line(self) -> int:
        return self.issues[0].line

    @classmethod
    def at(cls, file: str, line: int, message: str) -> "SpecError":
        return cls([Issue(file, line, message)])


class FieldError(ValueError):
    """Raised by field parsers; the caller adds file and line. `path` optionally says which
    part of the value (relative to what the caller parsed) is wrong."""

    def __init__(self, message: str, path: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.path = tuple(path)


def from_validation_error(err: ValidationError, file: str, doc: Any, prefix: Sequence[Any] = ()) -> SpecError:
    """Turn pydantic errors into file:line issues, locating each error's path in `doc`."""
    issues = []
    for e in err.errors(include_url=False):
        # Drop pydantic's own entries (union member names, 'function-after[...]') from the path.
        path = [p for p in e["loc"] if isinstance(p, int) or not _is_pydantic_tag(p)]
        where = ".".join(str(p) for p in (*prefix, *path)) or "document"
        msg = e["msg"].removeprefix("Value error, ")
        issues.append(Issue(file, line_at(doc, path), f"{where}: {msg}"))
    return SpecError(issues)


def _is_pydantic_tag(part: str) -> bool:
    return "[" in part or part in {"str", "list[str]", "float", "int", "bool"}


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise FieldError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit"
        )
    return value


def check_labels(labels: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out = {}
    for k, v in labels.items():
        if not isinstance(k, str) or not LABEL_NAME_RE.match(k) or k.startswith("__"):
            raise FieldError(f"label name {k!r} is not a valid Prometheus label name")
        if k in RESERVED_LABELS or k.startswith("sloth_") or k in {"model_alias", "model_version", "tenant"}:
            raise FieldError(f"label {k!r} is reserved (set selectors with 'selector')")
        if not isinstance(v, (str, int, float, bool)):
            raise FieldError(f"label {k!r} must have a scalar value")
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return tuple(sorted(out.items()))


ALERT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_alert_name(value: Any) -> str:
    if not isinstance(value, str) or not ALERT_NAME_RE.match(value):
        raise FieldError(f"alert name {value!r} must be letters, digits and '_' (e.g. MyServiceHighErrorRate)")
    return value


def check_alert_labels(labels: dict[str, Any], what: str = "label") -> tuple[tuple[str, str], ...]:
    """Extra labels or annotations of alerts: any valid name but the SLO's identity and
    `alertname`; `severity` is allowed (it sets the severity value)."""
    out = {}
    for k, v in labels.items():
        if not isinstance(k, str) or not LABEL_NAME_RE.match(k) or k.startswith("__"):
            raise FieldError(f"{what} name {k!r} is not a valid Prometheus label name")
        if what == "label" and (k.startswith("sloth_") or k == "alertname"):
            raise FieldError(f"label {k!r} is set by inferwatch and cannot be overridden")
        if not isinstance(v, (str, int, float, bool)):
            raise FieldError(f"{what} {k!r} must have a scalar value")
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return tuple(sorted(out.items()))


ERROR_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_error_type(value: Any) -> str:
    """An `error_type` label value as the gateway records them (rate_limited, budget_exceeded, ...)."""
    if not isinstance(value, str) or not ERROR_TYPE_RE.match(value):
        raise FieldError(f"error type {value!r} must be lowercase letters, digits and '_' (e.g. rate_limited)")
    return value


def parse_window(value: Any) -> TimeWindow:
    """'28d', '4w', '30d' (rolling, whole days) or 'calendar-month' / 'month'."""
    if isinstance(value, str) and value.strip().lower() in {"calendar-month", "month", "1m-calendar"}:
        return TimeWindow(days=30, calendar=True)
    m = re.fullmatch(r"\s*(\d+)\s*([dw])\s*", str(value))
    if not m:
        raise FieldError(f"window {value!r} must be like '28d', '4w' or 'calendar-month'")
    days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    if not MIN_PERIOD_DAYS <= days <= MAX_PERIOD_DAYS:
        raise FieldError(f"window {value!r} must be between {MIN_PERIOD_DAYS}d and {MAX_PERIOD_DAYS}d")
    return TimeWindow(days=days)


_DURATION_UNITS = {"s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}


def parse_seconds(value: Any, what: str) -> float:
    """A number of seconds, or a string such as '250ms', '2s', '1.5s', '2'."""
    if isinstance(value, bool):
        raise FieldError(f"{what} must be a number of seconds, got {value!r}")
    if isinstance(value, (int, float)):
        d = Decimal(repr(float(value)))
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(ms|s|m|h)?\s*", str(value))
        if not m:
            raise FieldError(f"{what} {value!r} must be seconds, e.g. 2, 0.25, '250ms' or '2s'")
        try:
            d = Decimal(m.group(1))
        except InvalidOperation:
            raise FieldError(f"{what} {value!r} is not a number") from None
        unit = m.group(2) or "s"
        d = d / 1000 if unit == "ms" else d * _DURATION_UNITS[unit]
    x = float(d)
    if not math.isfinite(x) or x <= 0:
        raise FieldError(f"{what} must be a positive number of seconds, got {value!r}")
    return x


def parse_threshold(value: Any) -> float:
    """A latency threshold in seconds, in the range where `le` is written without exponent."""
    x = parse_seconds(value, "threshold")
    if not 1e-4 <= x < 1e6:
        raise FieldError(f"threshold {x:g} s must be between 0.0001 s and 1e6 s")
    return x


def parse_minutes(value: Any, what: str) -> int:
    """A whole number of minutes from '15m', '1h', '1d' or an int of minutes."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", str(value))
        if not m:
            raise FieldError(f"{what} {value!r} must be like '15m', '1h' or '1d'")
        minutes = int(m.group(1)) * {"m": 1, "h": 60, "d": 1440}[m.group(2)]
    if minutes < 1:
        raise FieldError(f"{what} must be at least 1m")
    return minutes


def objective_from_percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FieldError(f"objective must be a percentage, got {value!r}")
    try:
        d = Decimal(str(value).strip().removesuffix("%"))
    except InvalidOperation:
        raise FieldError(f"objective {value!r} is not a number") from None
    return objective_from_ratio(d / 100, shown=f"{value}%")


def objective_from_ratio(value: Any, shown: str | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise FieldError(f"target must be a ratio, got {value!r}")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise FieldError(f"target {value!r} is not a number") from None
    if not Decimal(0) < d < Decimal(1):
        raise FieldError(f"objective {shown or value} must be above 0 % and below 100 %")
    return float(d)


def selector_values(value: Any, label: str) -> tuple[str, ...]:
    if value is None:
        return ()
    vals = [value] if isinstance(value, str) else value
    if not isinstance(vals, list) or not vals or not all(isinstance(v, str) and v for v in vals):
        raise FieldError(f"selector {label} must be a non-empty string or list of strings")
    return tuple(sorted(set(vals)))
