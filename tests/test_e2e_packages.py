"""A MOUS restored from what an astronomer really has: the ALMA download package (its tar files, or the tree
they unpack to), with no catalogue at all. Real CASA, the real binary; the delivered measurement sets are
compared with the independent reference of the fixture. Refusals (manual calibration, a SEMIPASS shell, a
truncated raw tar, a path outside the package roots) must come in step 1, before any raw data are read."""
import json
import re
import os
import pathlib
import shutil
import signal

import jsonschema
import pytest

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents, FIXTURE, MOUS_A, MOUS_B, RestoreAgent, compare_ms, require_prerequisites, start_nginx,
)

STATUS_SCHEMA = json.loads((pathlib.Path(__file__).resolve().parent.parent / "schemas/status.schema.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_prerequisites()
    assert (FIXTURE / "packages").is_dir(), f"{FIXTURE}/packages missing: regenerate the fixture (make test does)"


@pytest.fixture
def packages(tmp_path):
    """The fixture's packages under a package root of the test (copied: a test may damage one)."""
    root = tmp_path / "packages"
    shutil.copytree(FIXTURE / "packages", root, symlinks=True)
    return root



def package_agent(tmp_path, agents, packages, **sources):
    # The working area is kept so the tests can read metadata.json and the PPR.
    config = {"sources": {"packageRoots": [str(packages)], **sources}, "delivery": {"cleanWorkingArea": "never"}}
    agent = RestoreAgent(tmp_path, None, extra=config, catalogue=False).start()
    agents.append(agent)
    return agent


def assert_identical_to_reference(status):
    delivered = pathlib.Path(status["result"]["deliveryPath"])
    names = sorted(status["result"]["measurementSets"])
    assert names == ["uid___A002_Xb1e2a0_X1.ms", "uid___A002_Xb1f3c4_X1.ms"], names
    for ms in names:
        code, report = compare_ms(delivered / ms, FIXTURE / "reference" / ms)
        assert code == 0, f"{ms} differs from the reference: {report}"
        summary = json.loads(report.strip().splitlines()[-1])
        assert summary["identical"] and summary["maxAbsDiffCorrected"] == 0.0, summary  # bit-identical


@pytest.mark.parametrize("variant", ["member", "untarred"])
def test_restores_from_the_package_alone(tmp_path, agents, packages, variant):
    agent = package_agent(tmp_path, agents, packages)
    agent.drop(variant, {"mous": MOUS_A, "source": {"package": str(packages / variant)}})
    status = agent.wait_terminal(variant)
    assert status["state"] == "succeeded", json.dumps(status, indent=1) + agent.log_tail()
    jsonschema.validate(status, STATUS_SCHEMA)
    assert_identical_to_reference(status)
    restore = next((tmp_path / "data/restores").iterdir())
    metadata = json.loads((restore / "metadata.json").read_text())
    staging = metadata["plan"]["package"]
    assert staging["casaVersion"] == "6.5.4.9"
    assert staging["structureSource"].endswith("pprequest.xml")
    ppr = next(restore.glob("*/SOUS_*/GOUS_*/MOUS_*/working/PPR_*.xml")).read_text()
    # The calibration run's ProjectStructure, not placeholders; SESSION_2 (the Failed EB's) kept empty.
    assert 'entityId="uid://A001/X3f01/X1a0"' in ppr and "Demo_a_03_TM1" in ppr
    assert re.search(r'<Keyword[^>]*>SESSION_2</Keyword>\s*<Value[^>]*/>|<Keyword[^>]*>SESSION_2</Keyword>\s*<Value[^>]*></Value>', ppr), ppr
    if variant == "untarred":
        # The untarred ASDMs are linked, not copied (the package is read-only input).
        rawdata = next(restore.glob("*/SOUS_*/GOUS_*/MOUS_*/rawdata"))
        assert all((rawdata / d).is_symlink() for d in ("uid___A002_Xb1e2a0_X1", "uid___A002_Xb1f3c4_X1"))


def test_compact_names_without_pprequest_restore_with_documented_defaults(tmp_path, agents, packages):
    agent = package_agent(tmp_path, agents, packages, default="package")
    # No source in the request: sources.default = package finds the MOUS's package under the roots. Only one
    # variant may be there for that.
    for other in packages.iterdir():
        if other.name != "compact":
            shutil.rmtree(other)
    agent.drop("compact", {"mous": MOUS_A})
    status = agent.wait_terminal("compact")
    assert status["state"] == "succeeded", json.dumps(status, indent=1) + agent.log_tail()
    assert_identical_to_reference(status)
    restore = next((tmp_path / "data/restores").iterdir())
    ppr = next(restore.glob("*/SOUS_*/GOUS_*/MOUS_*/working/PPR_*.xml")).read_text()
    assert "uid://A000/X0/X0" in ppr, "unknown ProjectStructure refs get the documented placeholder"
    products = next(restore.glob("*/SOUS_*/GOUS_*/MOUS_*/products"))
    assert (products / "uid___A001_X3f01_X1a5.session_1.caltables.tgz").is_file(), "staged under the manifest's name"


@pytest.mark.parametrize("variant,mous,code", [
    ("manual-cal", MOUS_A, "manuallyCalibrated"),
    ("semipass", MOUS_A, "noCalibrationProducts"),
    ("truncated", MOUS_A, "packageFileTruncated"),
    ("mous-b", MOUS_B, "manifestMissingSession"),
    ("member", MOUS_B, "packageWrongMous"),
])
def test_unrestorable_packages_fail_before_any_raw_data_is_read(tmp_path, agents, packages, variant, mous, code):
    agent = package_agent(tmp_path, agents, packages)
    agent.drop(variant, {"mous": mous, "source": {"package": str(packages / variant)}})
    status = agent.wait_terminal(variant, timeout=120)
    assert status["state"] == "failed", json.dumps(status, indent=1)
    assert status["error"]["code"] == code, json.dumps(status["error"], indent=1)
    assert status["error"]["message"] and status["error"].get("hint")
    failed_at = status["error"].get("step") or (status.get("step") or {}).get("name")
    # Refused in step 1, before any raw data is read or unpacked (and so long before CASA).
    assert failed_at == "prepare", json.dumps(status, indent=1)
    rawdata = list((tmp_path / "data/restores").glob("*/*/SOUS_*/GOUS_*/MOUS_*/rawdata/uid___*"))
    assert rawdata == [], rawdata


def test_a_package_outside_the_roots_or_behind_a_symlink_is_refused(tmp_path, agents, packages):
    outside = tmp_path / "elsewhere"
    shutil.copytree(FIXTURE / "packages/member", outside)
    (packages / "link").symlink_to(outside, target_is_directory=True)
    agent = package_agent(tmp_path, agents, packages)
    agent.drop("outside", {"mous": MOUS_A, "source": {"package": str(outside)}})
    agent.drop("link", {"mous": MOUS_A, "source": {"package": str(packages / "link")}})
    agent.drop("dotdot", {"mous": MOUS_A, "source": {"package": str(packages) + "/../elsewhere"}})
    for name in ("outside", "link"):
        status = agent.wait_terminal(name, timeout=120)
        assert status["state"] == "failed" and status["error"]["code"] == "packageNotAllowed", json.dumps(status, indent=1)
        assert "package roots" in status["error"]["message"]
    status = agent.wait_terminal("dotdot", timeout=60)
    assert status["state"] == "rejected" and "'..'" in status["error"]["message"], json.dumps(status, indent=1)


# ---- packages that are not on this machine ----------------------------------------------------------------

def test_package_on_a_web_server_restores_fetching_only_what_a_restore_needs(tmp_path, agents):
    from agentlib import start_nginx
    # nginx's HTML autoindex (no sizes: files are checked against Content-Length and bypass the cache).
    nginx = start_nginx(FIXTURE / "packages", tmp_path / "nginx", autoindex="html")
    try:
        base = nginx.url + "/files/"
        agent = RestoreAgent(tmp_path, None, extra={"sources": {"packageURLs": [base]}}, catalogue=False).start()
        agents.append(agent)
        agent.drop("web", {"mous": MOUS_A, "source": {"package": base + "compact/"}})
        agent.drop("elsewhere", {"mous": MOUS_A, "source": {"package": nginx.url + "/other/compact/"}})
        status = agent.wait_terminal("web")
        assert status["state"] == "succeeded", json.dumps(status, indent=1) + agent.log_tail()
        assert_identical_to_reference(status)
        fetched = [p for p in nginx.requested_paths() if p.endswith(".tar")]
        assert sorted(set(fetched)) == sorted("/files/compact/" + n for n in (
            "2023.1.00042.S_uid___A001_X3f01_X1a5_auxiliary.tar", "2023.1.00042.S_uid___A002_Xb1e2a0_X1.asdm.sdm.tar",
            "2023.1.00042.S_uid___A002_Xb1f3c4_X1.asdm.sdm.tar")), fetched
        refused = agent.wait_terminal("elsewhere", timeout=60)
        assert refused["state"] == "failed" and refused["error"]["code"] == "packageNotAllowed", json.dumps(refused, indent=1)
    finally:
        nginx.stop()


def archive_config(tmp_path, **mous_a):
    config = tmp_path / "archive.json"
    entry = {"mous": MOUS_A, "project": "2023.1.00042.S", "groupOus": "uid://A001/X3f01/X1a4", "dataRights": "Public",
             "releaseDate": "2024-09-01T00:00:00.000", "packageDir": str(FIXTURE / "packages/member")}
    entry.update(mous_a)
    config.write_text(json.dumps({"mouses": [entry]}))
    return config


def test_public_archive_source_by_mous_uid_alone(tmp_path, agents):
    from agentlib import start_alma_archive
    archive = start_alma_archive(archive_config(tmp_path), tmp_path / "archive")
    try:
        agent = RestoreAgent(tmp_path, None, extra={"sources": {"almaArchive": {"url": archive.url}}}, catalogue=False).start()
        agents.append(agent)
        agent.drop("archive", {"mous": MOUS_A, "source": {"archive": "alma"}})
        status = agent.wait_terminal("archive")
        assert status["state"] == "succeeded", json.dumps(status, indent=1) + agent.log_tail()
        assert_identical_to_reference(status)
        assert archive.failures() == [], archive.failures()
        requests = archive.requests()
        paths = [r["path"] for r in requests]
        assert "/tap/sync" in paths and "/datalink/sync" in paths
        files = sorted({p.rsplit("/", 1)[1] for p in paths if p.startswith("/dataPortal/")})
        assert files == ["2023.1.00042.S_uid___A001_X3f01_X1a5_auxiliary.tar", "2023.1.00042.S_uid___A002_Xb1e2a0_X1.asdm.sdm.tar",
                         "2023.1.00042.S_uid___A002_Xb1f3c4_X1.asdm.sdm.tar"], files  # never the image tar
    finally:
        archive.stop()


def test_proprietary_archive_data_are_refused_without_a_token_and_fetched_with_one(tmp_path, agents):
    from agentlib import start_alma_archive
    archive = start_alma_archive(archive_config(tmp_path, dataRights="Proprietary", releaseDate="3000-01-01T00:00:00.000",
                                                token="s3cret-token"), tmp_path / "archive")
    try:
        agent = RestoreAgent(tmp_path / "a", None, extra={"sources": {"almaArchive": {"url": archive.url}}}, catalogue=False).start()
        agents.append(agent)
        agent.drop("closed", {"mous": MOUS_A, "source": {"archive": "alma"}})
        status = agent.wait_terminal("closed", timeout=120)
        assert status["state"] == "failed" and status["error"]["code"] == "proprietary", json.dumps(status, indent=1)
        assert "3000-01-01" in status["error"]["message"] and "tokenFile" in status["error"]["hint"]
        assert not [r for r in archive.requests() if r["path"].startswith("/dataPortal/")], "nothing fetched"
        agent.stop()

        token = tmp_path / "token"
        token.write_text("s3cret-token\n")
        token.chmod(0o600)
        agent = RestoreAgent(tmp_path / "b", None, extra={"sources": {"almaArchive": {"url": archive.url, "tokenFile": str(token)}}},
                      catalogue=False).start()
        agents.append(agent)
        agent.drop("open", {"mous": MOUS_A, "source": {"archive": "alma"}})
        status = agent.wait_terminal("open")
        assert status["state"] == "succeeded", json.dumps(status, indent=1) + agent.log_tail()
        fetched = [r for r in archive.requests() if r["path"].startswith("/dataPortal/") and r["method"] == "GET"]
        assert fetched and all((r.get("headers") or {}).get("authorization", {}).get("tokenValid") for r in fetched), fetched
        assert archive.failures() == []
    finally:
        archive.stop()
