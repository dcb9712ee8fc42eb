from tests.gateway.conftest import stub  # noqa: F401 - the stub upstream fixture, shared
