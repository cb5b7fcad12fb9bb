"""The JSON Schemas in schemas/ agree with the examples and with the agent's own validator."""
import json
import pathlib
import subprocess

import jsonschema
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUEST_SCHEMA = json.loads((ROOT / "schemas/request.schema.json").read_text())
STATUS_SCHEMA = json.loads((ROOT / "schemas/status.schema.json").read_text())
VALID = sorted((ROOT / "examples/requests").glob("*.json"))
INVALID = sorted((ROOT / "examples/requests/invalid").glob("*.json"))
AGENT = ROOT / ".build/debug/dropbox-agent"


def test_schemas_are_valid_schemas():
    jsonschema.Draft202012Validator.check_schema(REQUEST_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(STATUS_SCHEMA)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_examples_match_the_schema(path):
    jsonschema.validate(json.loads(path.read_text()), REQUEST_SCHEMA)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_examples_fail_the_schema(path):
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError:
        return  # not JSON at all (truncated): invalid by definition
    if path.name == "duplicate-key.json":
        return  # JSON Schema cannot see duplicate keys; the agent's parser rejects them (checked below)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, REQUEST_SCHEMA)


@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.name)
def test_agent_validate_agrees_with_the_examples(path):
    assert AGENT.exists(), "build the agent first (swift build)"
    result = subprocess.run([str(AGENT), "validate", str(path)], capture_output=True, text=True, timeout=60)
    if path.parent.name == "invalid":
        assert result.returncode == 1, result.stdout + result.stderr
        assert "$" in result.stdout, "every problem is printed with its JSON path"
    else:
        assert result.returncode == 0, result.stdout + result.stderr


def test_validate_refuses_average_without_derived_content_with_a_clear_error():
    """`average` applies to derived products only: refused by `validate` (as at intake), never later in step 6."""
    assert AGENT.exists(), "build the agent first (swift build)"
    path = ROOT / "examples/requests/invalid/average-without-derived-content.json"
    result = subprocess.run([str(AGENT), "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(l for l in result.stdout.splitlines() if "$.delivery.average" in l)
    assert "science, targets and contsub" in line and "calibrated" in line, line
