"""The served OpenAPI document describes what the server does: Schemathesis says so,
with the admin token (the other run is in test_api_contract_anonymous.py).

Schemathesis (pinned in the test extra) reads ``/schema/openapi.json`` from a real server
process and sends generated requests with every check on: undocumented status codes,
responses that violate their schema, schema-valid requests that are refused, 5xx, and
the rest. It runs once with the admin token and once without, bounded in examples and
seeded, so the run is repeatable and stays within the suite's time budget. Any failure
of any check fails the test, with Schemathesis' own report as the message.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.contract import assert_contract_kept, contract_server
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from contract_server(tmp_path_factory)


def test_the_server_keeps_its_openapi_contract_admin(server: ServerProcess) -> None:
    assert_contract_kept(server, token=True)
