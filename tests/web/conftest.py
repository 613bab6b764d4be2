from tests.api.conftest import api_workspace  # noqa: F401 - the same gated workspace
