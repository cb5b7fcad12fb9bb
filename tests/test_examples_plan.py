"""Every example request either plans a restore or says exactly what is missing (issue 8: no seed request may
fail with a bare "unknown"). Runs `validate --plan` on the embedded defaults in a scratch data directory."""
import json
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGENT = ROOT / ".build/debug/dropbox-agent"
EXAMPLES = sorted((ROOT / "examples/requests").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_plans_or_says_what_is_missing(path, tmp_path):
    assert AGENT.exists(), "build the agent first (swift build)"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataDirectory": str(tmp_path / "data")}))
    r = subprocess.run([str(AGENT), "validate", "--plan", "--config", str(config), str(path)], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    if r.returncode == 0:
        assert "PPR:" in out and "<SciPipeRequest" in out, out
        return
    assert "cannot be restored" in out, out
    request = json.loads(path.read_text())
    source = request.get("source") or {}
    if "archive" in source:
        assert "[sourceNotConfigured]" in out and "sources.almaArchive.url" in out, out
    elif "package" in source:
        assert "[packageNotAllowed]" in out or "[packageNotFound]" in out, out
        assert "package roots" in out or "sources.packageURLs" in out or "does not exist" in out, out
    else:
        # A MOUS the site never imported: the message names the ways to get it.
        assert "[unknownMous]" in out, out
        assert '"source": {"package"' in out and '"source": {"archive": "alma"}' in out, out
