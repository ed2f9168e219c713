"""The served OpenAPI document holds without a token too: Schemathesis' every check, as
test_api_contract_admin.py runs it with the admin token (the why and the bounds are there),
over every operation a visitor or an ingest client can call. The admin-only operations
answer every request without a token with one 401; test_openapi.py checks that answer
for each of them (``tests/support/contract.py`` says why they are left out here).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.contract import assert_contract_kept, contract_server
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from contract_server(tmp_path_factory)


def test_the_server_keeps_its_openapi_contract_anonymous(server: ServerProcess) -> None:
    assert_contract_kept(server, token=False)
