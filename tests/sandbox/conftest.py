"""Fixtures for the sandbox server tests: a small generated world on disk, servers on free
ports, and a validator for the responses against the contracts' OpenAPI files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sandbox import SandboxServers, generate_world

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "sources"
WORLD_PERSONS = 300


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> Path:
    """A small generated world, built once per session (copied per test that writes to it)."""
    folder = tmp_path_factory.mktemp("world-template")
    return Path(generate_world(folder / "world", persons=WORLD_PERSONS, seed=11))


@pytest.fixture()
def world(world_template, tmp_path) -> Path:
    """A private copy of the world: tests that touch rows change the files."""
    copy = tmp_path / "world"
    shutil.copytree(world_template, copy)
    return copy


@pytest.fixture()
def servers(world):
    with SandboxServers(world) as running:
        yield running


# -- the contracts as JSON Schema ------------------------------------------------------------

class ContractValidator:
    """Validates a response of one operation against its OpenAPI 3.1 description."""

    def __init__(self, contract_file: Path) -> None:
        self.document = yaml.safe_load(contract_file.read_text(encoding="utf-8"))
        self.uri = f"urn:contract:{contract_file.stem}"
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(self.uri, resource)

    def _response_object(self, path: str, method: str, status: int) -> tuple[dict, str]:
        responses = self.document["paths"][path][method.lower()]["responses"]
        response = responses.get(str(status))
        if response is None and status >= 400 and "Error" in self.document["components"].get("responses", {}):
            # The national file declares 400 on /volunteers only, though every listing
            # shares its parameters (region required): an undeclared error must still be
            # the interface's Error object.
            response = {"$ref": "#/components/responses/Error"}
        if response is None:
            raise AssertionError(f"{method} {path} does not declare status {status}")
        pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
        if "$ref" in response:  # a shared response under components/responses
            pointer = response["$ref"].lstrip("#")
            response = self._resolve_pointer(pointer)
        return response, pointer

    def _resolve_pointer(self, pointer: str):
        node = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validate(self, path: str, method: str, status: int, body, headers=None) -> None:
        response, pointer = self._response_object(path, method, status)
        schema_pointer = f"{pointer}/content/application~1json/schema"
        validator = Draft202012Validator(
            {"$ref": f"{self.uri}#{schema_pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{list(error.path)}: {error.message}" for error in errors[:5]
        )
        for name, header in (response.get("headers") or {}).items():
            assert headers is not None and name in headers, f"{status} lacks header {name}"
            if header.get("schema", {}).get("type") == "integer":
                assert headers[name].isdigit(), f"header {name} is not an integer: {headers[name]!r}"


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


@pytest.fixture(scope="session")
def national_contract() -> ContractValidator:
    return ContractValidator(CONTRACTS_DIR / "national.openapi.yaml")


@pytest.fixture(scope="session")
def provincial_contract() -> ContractValidator:
    return ContractValidator(CONTRACTS_DIR / "provincial.openapi.yaml")
