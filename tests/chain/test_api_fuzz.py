"""Schemathesis over every operation of a real node's OpenAPI, with the operator's token and without it:
no answer is a 5xx, and every answer the schema documents has the documented shape.

One real node (a process on Anvil, seeded with a SKU, a location, a lot and a receipt) serves every case.
The schema is the app's own OpenAPI, built at import so that pytest can make one test per operation;
`test_served_schema_is_the_fuzzed_one` checks the node serves exactly that schema at /openapi.json.

Plain pytest parametrization over Schemathesis' Hypothesis strategies, not `@schema.parametrize()`: under
pytest 9.2 (schemathesis 4.32) `from_fixture` fails (it writes `Function._nodeid`, gone from pytest) and the
eager `schema.parametrize()` gives every operation the same node id, so with `pytest -n` (`make test`) the
items collapse into one and their failures are lost. So Schemathesis' fuzzing phase runs (positive and negative
data), not its coverage or stateful phases.

Bounded and reproducible: few examples per operation, derandomized, no example database. A deeper local run:
`FUZZ_MAX_EXAMPLES=200 .venv/bin/pytest tests/chain/test_api_fuzz.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from chain.anvil import AnvilProcess
from chain.deploy import Deployment
from node.api.app import create_app
from node.services.container import NodeServices
from node.settings import NodeSettings
from tests.helpers.nodes import NodeFactory, RunningNode, soon, stock_up


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document: building the routes needs no services (nothing starts without lifespan)."""
    node_settings = NodeSettings()
    return create_app(node_settings, services=cast(NodeServices, SimpleNamespace(settings=node_settings))).openapi()


OPENAPI = _openapi()
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations() if isinstance(result, Ok)]

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Not run, on purpose:
# - positive_data_acceptance: "schema-valid" data is often not valid for the node (an unknown SKU is a 404,
#   "0000-00-00" matches `format: date` for a validator that does not assert formats, a rule book body is any
#   object), so a refusal is right.
# - unsupported_method / allow_header_conformance: Starlette answers a 405 with the `Allow` of the first route
#   on that path (OPTIONS /skus says `Allow: POST` though GET /skus exists): the framework's routing.
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    use_after_free,
    ensure_resource_availability,
    status_code_conformance,  # every router documents the node's refusals (node/api/errors.py ERROR_RESPONSES)
]


@pytest.fixture(scope="module")
def fuzz_node(
    anvil: AnvilProcess, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    factory = NodeFactory(anvil, deployment, tmp_path_factory.mktemp("fuzz"))
    try:
        node = factory.new("fuzz")
        stock_up(node, [("F1", soon(200), 100)])
        yield node
    finally:
        factory.stop_all()


def test_served_schema_is_the_fuzzed_one(fuzz_node: RunningNode) -> None:
    served = httpx.get(f"{fuzz_node.url}/openapi.json", timeout=30).raise_for_status().json()
    assert served["paths"] == OPENAPI["paths"]
    assert served.get("components") == OPENAPI.get("components")


@pytest.mark.parametrize("with_token", [True, False], ids=["operator", "anonymous"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_operation(operation: schemathesis.APIOperation, with_token: bool, fuzz_node: RunningNode) -> None:
    # Without the token, Schemathesis still sends `Authorization` headers of its own now and then: the
    # operator dependencies declare it as a header parameter.
    headers = {"Authorization": f"Bearer {fuzz_node.token}"} if with_token else None
    cases = st.one_of([operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])

    @FUZZ
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=fuzz_node.url, headers=headers, checks=CHECKS, timeout=30)

    fuzz()
