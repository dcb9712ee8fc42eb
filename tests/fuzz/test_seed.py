"""Where the schema fuzz's seed comes from: the replay variable, the commit, or a fixed one."""

from __future__ import annotations

import subprocess

import pytest

from tests.fuzz.seed import ENV, FIXED, ROOT, fuzz_seed, replay_hint


def test_the_replay_variable_wins_over_the_commit():
    assert fuzz_seed(ROOT, {ENV: " 1234 "}) == (1234, ENV)
    assert replay_hint(1234) == f"replay: {ENV}=1234 ./dev test tests/fuzz"
    with pytest.raises(ValueError, match=ENV):
        fuzz_seed(ROOT, {ENV: "abc"})


def test_a_git_checkout_seeds_from_its_commit():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert fuzz_seed(ROOT, {}) == (int(head.stdout[:8], 16), f"commit {head.stdout[:12]}")


def test_outside_a_git_checkout_the_seed_is_fixed(tmp_path):
    assert fuzz_seed(tmp_path, {}) == (FIXED, "fixed: not a git checkout")
