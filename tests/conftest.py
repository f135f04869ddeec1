import os

import pytest


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A real PostgreSQL server (CI starts one with .ci/services.sh and exports its URL)."""
    url = os.environ.get("INTER1SRV_TEST_PG_URL")
    if not url:
        pytest.skip("no PostgreSQL server: run `export INTER1SRV_TEST_PG_URL=$(bash .ci/services.sh)`")
    return url
