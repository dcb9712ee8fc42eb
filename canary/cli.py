"""`inferwatch canary`: a CI gate and rollout control, over the platform's HTTP API.

    inferwatch canary gate --url URL --key KEY --alias A --baseline V1 --canary V2 \\
        [--profile P] [--window-minutes N | --live --deadline-minutes N] [--json]

exits 0 on pass, 1 on fail or marginal, 2 on inconclusive, 3 when the API cannot be used
(unreachable, refused, timed out waiting). Mount `app` as a typer sub-app.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Annotated, Any, Optional

import httpx
import typer

app = typer.Typer(help="Canary analyses (CI gate) and progressive rollouts.", no_args_is_help=True)
rollout_app = typer.Typer(help="Progressive rollouts with automatic rollback.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_ERROR = 0, 1, 2, 3

UrlOpt = Annotated[str, typer.Option("--url", envvar="INFERWATCH_URL", help="Base URL of the platform.")]
KeyOpt = Annotated[str, typer.Option("--key", envvar="INFERWATCH_ADMIN_KEY", help="Admin API key.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (the API's JSON).")]


@app.callback()
def _main() -> None:
    """Canary analysis of a new version against the one serving now."""


class ApiError(Exception):
    pass


def _client(url: str, key: str, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=url.rstrip("/"), headers={"authorization": f"Bearer {key}"}, timeout=timeout)


def _call(c: httpx.Client, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    try:
        r = c.request(method, path, json=body)
    except httpx.HTTPError as e:
        raise ApiError(f"{method} {path}: {type(e).__name__}: {e}") from e
    try:
        data = r.json()
    except ValueError:
        data = {}
    if r.status_code >= 400:
        msg = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
        raise ApiError(f"{method} {path}: HTTP {r.status_code}: {msg or r.text[:300]}")
    if not isinstance(data, dict):
        raise ApiError(f"{method} {path}: HTTP {r.status_code}: not a JSON object: {r.text[:300]}")
    return data


def _fail(msg: str) -> typer.Exit:
    typer.secho(f"error: {msg}", fg="red", err=True)
    return typer.Exit(EXIT_ERROR)


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}g}"


def _effect(m: Mapping[str, Any]) -> str:
    def pct(v: Any) -> str:
        if v is None:
            return "?"
        if isinstance(v, str):
            return v
        return f"{v * 100:+.1f}%"

    if m.get("effect") is None:
        return "-"
    return f"{pct(m['effect'])} [{pct(m.get('lower'))}, {pct(m.get('upper'))}]"


def _summary(s: Mapping[str, Any]) -> str:
    return f"n={s.get('n', 0)} mean={_num(s.get('mean'))} p50={_num(s.get('p50'))} p95={_num(s.get('p95'))}"


def render(analysis: Mapping[str, Any]) -> None:
    """The per-metric table and the verdict line."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    result = analysis.get("result") or {}
    colours = {"pass": "green", "fail": "bold red", "marginal": "yellow", "inconclusive": "yellow"}
    t = Table(
        "metric",
        "outcome",
        "baseline",
        "canary",
        "effect [interval]",
        "test",
        "p / e",
        "reason",
        box=box.SIMPLE_HEAD,
        title=f"canary {analysis['canary']} vs baseline {analysis['baseline']} ({analysis['alias']})",
    )
    for m in result.get("metrics", []):
        outcome = m["outcome"]
        colour = "green" if outcome == "Pass" else "red" if outcome in ("High", "Low", "NodataFail") else "yellow"
        pe = f"p={_num(m.get('p_value'))}" + (f" e={_num(m.get('e_value'))}" if m.get("e_value") is not None else "")
        t.add_row(
            m["label"] + (" *" if m.get("critical") else ""),
            f"[{colour}]{outcome}[/]",
            _summary(m["baseline"]),
            _summary(m["canary"]),
            _effect(m),
            m.get("test", "-"),
            pe,
            m.get("reason", ""),
        )
    con = Console()
    con.print(t)
    verdict = analysis.get("verdict") or "running"
    score = result.get("score")
    mode = result.get("mode", analysis.get("mode"))
    con.print(
        f"[{colours.get(verdict, 'white')}]{verdict.upper()}[/] score {_num(score, 3)}: "
        f"{result.get('reason', '')}  (analysis {analysis['id']}, {mode}, {result.get('looks', 0)} looks)"
    )


def exit_code(analysis: Mapping[str, Any]) -> int:
    codes = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "marginal": EXIT_FAIL}
    return codes.get(analysis.get("verdict") or "", EXIT_INCONCLUSIVE)


@app.command()
def gate(
    url: UrlOpt,
    key: KeyOpt,
    alias: Annotated[str, typer.Option(help="Model alias the versions serve.")],
    baseline: Annotated[str, typer.Option(help="The version serving now.")],
    canary: Annotated[str, typer.Option(help="The new version.")],
    profile: Annotated[
        str, typer.Option(help="Named profile (default-llm, latency-only) or a JSON/YAML profile file.")
    ] = "default-llm",
    window_minutes: Annotated[Optional[float], typer.Option(help="Judge the last N minutes of the ledger.")] = None,
    live: Annotated[bool, typer.Option("--live", help="Live sequential analysis from now.")] = False,
    deadline_minutes: Annotated[Optional[float], typer.Option(help="Live: inconclusive after N minutes.")] = None,
    poll_s: Annotated[float, typer.Option("--poll-s", help="Seconds between looks at the result.")] = 5.0,
    timeout_minutes: Annotated[
        Optional[float], typer.Option(help="Give up waiting (exit 3); default: deadline + 5 min, or 10 min.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an analysis, wait for its decision, print it; exit 0 pass, 1 fail/marginal, 2 inconclusive, 3 error."""
    if live == (window_minutes is not None):
        raise _fail("give either --window-minutes N or --live --deadline-minutes N")
    if live and deadline_minutes is None:
        raise _fail("--live needs --deadline-minutes")
    body: dict[str, Any] = {"alias": alias, "baseline": baseline, "canary": canary, "profile": _profile_arg(profile)}
    body.update({"live": True, "deadline_minutes": deadline_minutes} if live else {"window_minutes": window_minutes})
    default_minutes = deadline_minutes + 5 if live and deadline_minutes is not None else 10
    wait_s = 60 * (timeout_minutes if timeout_minutes is not None else default_minutes)
    try:
        with _client(url, key) as c:
            a = _call(c, "POST", "/v1/canary/analyses", body)
            end = time.monotonic() + wait_s
            while not a.get("decided"):
                if time.monotonic() >= end:
                    raise ApiError(f"no decision for analysis {a['id']} after {wait_s:.0f}s")
                time.sleep(poll_s)
                a = _call(c, "GET", f"/v1/canary/analyses/{a['id']}")
    except ApiError as e:
        raise _fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps(a, indent=2))
    else:
        render(a)
    raise typer.Exit(exit_code(a))


def _profile_arg(profile: str) -> str | dict[str, Any]:
    if not os.path.isfile(profile):
        return profile
    with open(profile, encoding="utf-8") as f:
        text = f.read()
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise _fail(f"{profile}: a profile file holds one JSON or YAML mapping")
    return data


# ---- rollouts ------------------------------------------------------------------------------


def _show_rollout(r: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    steps = " -> ".join(
        f"{'[' if i == r['current_step'] and r['state'] in ('running', 'paused') else ''}{p:g}%"
        f"{']' if i == r['current_step'] and r['state'] in ('running', 'paused') else ''}"
        for i, p in enumerate(r["steps"])
    )
    typer.echo(
        f"rollout {r['id']} of {r['canary']} over {r['baseline']} behind {r['alias']}: {r['state']}, "
        f"canary at {r['canary_percent']:g}%"
    )
    typer.echo(f"  steps: {steps}")
    a = r.get("analysis")
    if a and r["state"] in ("running", "paused"):
        res = a.get("result") or {}
        typer.echo(f"  step analysis {a['id']}: {a.get('verdict') or 'no data yet'} {res.get('reason', '')}")
    for e in r.get("events", []):
        d = e.get("detail") or {}
        extra = d.get("reason") or (f"{d['percent']:g}%" if isinstance(d.get("percent"), (int, float)) else "")
        typer.echo(f"  {e['at']}  {e['kind']:<12} {extra}")


@rollout_app.command("start")
def rollout_start(
    url: UrlOpt,
    key: KeyOpt,
    alias: Annotated[str, typer.Option(help="Model alias to roll out behind.")],
    baseline: Annotated[str, typer.Option(help="The version serving now.")],
    canary: Annotated[str, typer.Option(help="The new version.")],
    profile: Annotated[str, typer.Option(help="Named profile or a JSON/YAML profile file.")] = "default-llm",
    steps: Annotated[str, typer.Option(help="Canary percent per step, comma separated.")] = "1,5,25,50,100",
    min_step_s: Annotated[float, typer.Option("--min-step-s", help="Minimum seconds per step.")] = 300,
    min_step_samples: Annotated[int, typer.Option(help="Minimum canary samples per step.")] = 200,
    max_step_s: Annotated[
        float, typer.Option("--max-step-s", help="A step without a decision by then is inconclusive.")
    ] = 3600,
    on_inconclusive: Annotated[str, typer.Option(help="pause or rollback.")] = "pause",
    notify_url: Annotated[Optional[str], typer.Option(help="Webhook for rollback/promotion events.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a progressive rollout (the platform's scheduled job drives it)."""
    try:
        plan = [float(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        raise _fail("--steps: comma-separated numbers") from None
    body = {
        "alias": alias,
        "baseline": baseline,
        "canary": canary,
        "profile": _profile_arg(profile),
        "steps": plan,
        "min_step_s": min_step_s,
        "min_step_samples": min_step_samples,
        "max_step_s": max_step_s,
        "on_inconclusive": on_inconclusive,
        "notify_url": notify_url,
    }
    _rollout_call(url, key, "POST", "/v1/canary/rollouts", body, as_json)


@rollout_app.command("status")
def rollout_status(
    url: UrlOpt,
    key: KeyOpt,
    rollout_id: Annotated[Optional[str], typer.Argument(help="Rollout id; omit to list.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A rollout with its events, or the list of rollouts."""
    if rollout_id:
        _rollout_call(url, key, "GET", f"/v1/canary/rollouts/{rollout_id}", None, as_json)
        return
    try:
        with _client(url, key) as c:
            data = _call(c, "GET", "/v1/canary/rollouts")["data"]
    except ApiError as e:
        raise _fail(str(e)) from None
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for r in data:
        typer.echo(
            f"{r['id']}  {r['alias']}  {r['baseline']} -> {r['canary']}  {r['state']}  canary {r['canary_percent']:g}%"
        )


def _action(name: str) -> Any:
    def cmd(
        url: UrlOpt,
        key: KeyOpt,
        rollout_id: Annotated[str, typer.Argument(help="Rollout id.")],
        as_json: JsonOpt = False,
    ) -> None:
        _rollout_call(url, key, "POST", f"/v1/canary/rollouts/{rollout_id}/{name}", None, as_json)

    cmd.__doc__ = {
        "pause": "Pause a rollout: weights stay, steps stop.",
        "resume": "Resume a paused rollout (its step starts over).",
        "abort": "Abort a rollout: all traffic back to the baseline.",
    }[name]
    return cmd


for _name in ("pause", "resume", "abort"):
    rollout_app.command(_name)(_action(_name))


def _rollout_call(url: str, key: str, method: str, path: str, body: Mapping[str, Any] | None, as_json: bool) -> None:
    try:
        with _client(url, key) as c:
            r = _call(c, method, path, body)
    except ApiError as e:
        raise _fail(str(e)) from None
    _show_rollout(r, as_json)
