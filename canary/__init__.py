"""Canary analysis: per-metric classifiers, Kayenta-style scoring, sequential (always-valid)
and fixed-horizon judges. The rollout controller, HTTP API and CLI gate wrap:

- `canary.judge.judge(baseline, canary, profile)` -> `JudgeResult` (one fixed-horizon look at
  a window; not re-exported here, where the name would shadow the `canary.judge` module)
- `SequentialAnalysis(profile).update(new_baseline, new_canary)` -> `JudgeResult` (live;
  `finish()` at the deadline; `state_dict()` / `from_state()` across restarts)
- `samples_from_records(records)` -> per-metric arrays from `RequestRecord`s
"""

from canary.classifier import MetricResult, Outcome, Summary
from canary.config import PROFILES, Direction, Kind, MetricConfig, Profile, get_profile
from canary.judge import JudgeResult, SequentialAnalysis, Verdict
from canary.samples import METRICS, samples_from_records, split_by_version

__all__ = [
    "METRICS",
    "PROFILES",
    "Direction",
    "JudgeResult",
    "Kind",
    "MetricConfig",
    "MetricResult",
    "Outcome",
    "Profile",
    "SequentialAnalysis",
    "Summary",
    "Verdict",
    "get_profile",
    "samples_from_records",
    "split_by_version",
]
