"""Response bodies against OpenAI's published OpenAPI document."""

from tests.gateway.conftest import real_worker  # noqa: F401 - the session-wide demo worker, shared
