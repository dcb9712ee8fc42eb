"""The in-process limiter: exact sliding windows for limited tenants, no memory for unlimited ones."""

from __future__ import annotations

from gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_limited_windows_slide_and_unlimited_ones_keep_nothing() -> None:
    clock = Clock()
    rl = RateLimiter(clock)
    for _ in range(3):
        assert rl.check("acme", 3, 100, 10).allowed
        rl.add_tokens("acme", 10)
    refused = rl.check("acme", 3, 100, 10)
    assert (refused.allowed, refused.limit_name, refused.retry_after_s) == (False, "requests", 60.0)
    clock.t += 60.0  # the first three leave the window
    assert rl.check("acme", 3, 100, 10).allowed

    for _ in range(10_000):
        assert rl.check("free", None, None, 50).allowed
        rl.add_tokens("free", 50)
    assert not rl._requests["free"].events and not rl._tokens["free"].events
