"""Derived products on the restore's execution backend (issue 13): with `execution.backend: slurm` the derivation
(mstransform, uvcontsub, plots: casa/derive_products.py) is a Slurm batch job like the restore, on the real
single-node cluster of scripts/services/slurm.sh (started by test_slurm.py's fixture), not a CASA process of the
agent's host."""
import json
import pathlib

import jsonschema

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents, FIXTURE, MOUS_A, ROOT, start_nginx,
)
from test_slurm import jobs_named, scontrol_job, slurm, slurm_agent  # noqa: F401 (slurm is a fixture)

STATUS_SCHEMA = json.loads((ROOT / "schemas/status.schema.json").read_text())


def entries(log, message):
    out = []
    for line in log.read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if e.get("message") == message:
            out.append(e)
    return out


def test_the_derivation_is_a_slurm_job_of_its_own_after_the_restore_job(tmp_path, slurm, monkeypatch, agents):
    nginx = start_nginx(FIXTURE / "store", tmp_path / "nginx")
    try:
        agent = slurm_agent(tmp_path, nginx.url, slurm, monkeypatch).start()
        agents.append(agent)
        agent.drop("derived", {"mous": MOUS_A, "delivery": {"content": ["targets"]}})
        status = agent.wait_terminal("derived")
        assert status["state"] == "succeeded", json.dumps(status.get("error")) + agent.log_tail()
        jsonschema.validate(status, STATUS_SCHEMA)
        # Two jobs: the restore's, then the derivation's, each completed in Slurm's job completion record.
        # Named after the job id (`derived.<time>.<host>.<pid>.<n>`): the restore's dropbox-<id>-1, the
        # derivation's dropbox-derive-<id>-1.
        (restore_job,) = [j[0] for j in jobs_named(slurm["conf"], "dropbox-derived.")] or [None]
        derive_jobs = jobs_named(slurm["conf"], "dropbox-derive-derived.")
        assert restore_job and len(derive_jobs) == 1, (restore_job, derive_jobs)
        derive_job = derive_jobs[0][0]
        completed = (slurm["run"] / "jobcomp.txt").read_text().splitlines()
        for job in (restore_job, derive_job):
            line = [c for c in completed if f"JobId={job} " in c]
            assert len(line) == 1 and "JobState=COMPLETED" in line[0], (job, line)
        assert scontrol_job(slurm["conf"], derive_job).get("CPUs/Task") in (None, "1")
        # The status keeps describing step 5's job; the derivation's is in the log.
        assert status["execution"]["jobIds"] == [restore_job]
        submitted = entries(agent.logs[-1], "batch job submitted")
        names = [e["job.name"] for e in submitted]
        assert len(names) == 2 and names[0].startswith("dropbox-derived.") and names[1].startswith("dropbox-derive-derived."), names
        assert [e["execution.jobId"] for e in submitted] == [restore_job, derive_job]
        # No CASA process of the agent's own for the derivation (the local backend logs one "starting CASA" with its argv).
        assert not [e for e in entries(agent.logs[-1], "starting CASA") if "derive_products.py" in json.dumps(e)]
        # What the job made was checked and delivered: the science targets of each EB, and the plots.
        delivered = pathlib.Path(status["result"]["deliveryPath"])
        ebs = [ms[:-3] for ms in status["result"]["measurementSets"]]
        assert sorted(status["result"]["products"]) == sorted(eb + ".ms.split.cal.source" for eb in ebs)
        assert all((delivered / p).is_dir() for p in status["result"]["products"])
        assert len(status["result"]["plots"]) == 2 * len(ebs)
        assert agent.stop() == 0
    finally:
        nginx.stop()
