"""The Graph API sandbox as fixtures: a test module that wants MAX to talk to a real sandbox
imports both (``from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url``);
they register as ``sandbox`` and ``graph_url``, and this ``graph_url`` then overrides the channels
conftest's unreachable default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from max_server.channels.whatsapp.sandbox import Sandbox
from tests.channels.conftest import APP_SECRET

ACCESS_TOKEN = "sandbox-token"


@pytest.fixture(name="sandbox")
def sandbox_fixture() -> Iterator[Sandbox]:
    with Sandbox(app_secret=APP_SECRET, access_token=ACCESS_TOKEN) as running:
        yield running


@pytest.fixture(name="graph_url")
def sandbox_graph_url(sandbox: Sandbox) -> str:
    return sandbox.graph_url
