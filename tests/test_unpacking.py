"""Issue 10, "Unpacking that cannot escape": `validate --config` refuses a request naming a CASA installation that
the configuration does not list (the agent refuses it at intake too: Tests/DropboxAgentTests/IntakeRefusalTests)."""
from __future__ import annotations

import json
import subprocess

from agentlib import agent_binary

MOUS = "uid://A001/X3f01/X1a5"


def run_validate(tmp_path, request: dict, config: dict | None):
    req = tmp_path / "req.json"
    req.write_text(json.dumps(request))
    argv = [str(agent_binary()), "validate", str(req)]
    if config is not None:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps(config))
        argv += ["--config", str(cfg)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


CONFIG = {"dataDirectory": "data", "casa": {"installations": [
    {"name": "casa-pipeline", "kind": "pipeline", "home": "/opt/casa-pipeline-6.6.1", "version": "6.6.1"}]}}


def test_validate_with_config_refuses_an_unconfigured_casa(tmp_path):
    ok = run_validate(tmp_path, {"mous": MOUS, "casa": "casa-pipeline"}, CONFIG)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = run_validate(tmp_path, {"mous": MOUS, "casa": "casa-elsewhere"}, CONFIG)
    assert bad.returncode == 1
    assert "$.casa" in bad.stdout and "casa-elsewhere" in bad.stdout and "not a configured installation" in bad.stdout
    event = {"eventName": "runAlmaBasicRestoreWorkflow",
             "type": "edu.nrao.archive.workflow.messaging.commands.StartWorkflow",
             "metadata": {"ousStatusId": MOUS, "casaHome": "/opt/casa-elsewhere"}}
    bad_event = run_validate(tmp_path, event, CONFIG)
    assert bad_event.returncode == 1 and "$.metadata.casaHome" in bad_event.stdout, bad_event.stdout
    event["metadata"]["casaHome"] = "/opt/casa-pipeline-6.6.1/"
    assert run_validate(tmp_path, event, CONFIG).returncode == 0
    # Without a configuration only the request itself is checked (as before).
    assert run_validate(tmp_path, {"mous": MOUS, "casa": "casa-elsewhere"}, None).returncode == 0
