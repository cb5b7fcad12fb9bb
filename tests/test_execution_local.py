"""The local execution backend has the shape of the Slurm one (issue 12): CASA runs detached from the agent as a
job of its own (casa/run_job.sh in a session of its own), with its progress and exit record in the working area,
so an agent killed during CASA is restarted and re-attaches to the running CASA — recorded by pid and start
time — instead of starting it again."""
import json
import os
import pathlib
import signal

import jsonschema
import pytest

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents, FIXTURE, MOUS_A, ROOT, RestoreAgent, compare_ms, require_prerequisites, start_nginx, wait_until,
)

STATUS_SCHEMA = json.loads((ROOT / "schemas/status.schema.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_prerequisites()


def start_time(pid):
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def gated_program_directory(tmp_path):
    """casa/ with run_job.sh behind a gate: the job (same pid, as the wrapper execs) waits until the test creates
    the release file, so the agent is killed while CASA is certainly running, however fast the demo CASA is."""
    programs = tmp_path / "casa-programs"
    programs.mkdir()
    for entry in (ROOT / "casa").iterdir():
        if entry.name != "run_job.sh":
            (programs / entry.name).symlink_to(entry)
    release = tmp_path / "release-casa"
    gate = programs / "run_job.sh"
    gate.write_text(f"#!/bin/sh\nwhile [ ! -e '{release}' ]; do sleep 0.05; done\nexec '{ROOT / 'casa' / 'run_job.sh'}' \"$@\"\n")
    gate.chmod(0o755)
    return programs, release


def test_agent_killed_during_local_casa_reattaches_to_the_same_process_and_casa_runs_once(tmp_path, agents):
    nginx = start_nginx(FIXTURE / "store", tmp_path / "nginx")
    programs, release = gated_program_directory(tmp_path)
    try:
        agent = RestoreAgent(tmp_path, nginx.url, extra={"casa": {"programDirectory": str(programs)}}).start()
        agents.append(agent)
        agent.drop("local", {"mous": MOUS_A})
        # The id is recorded (state PENDING) before the first poll sees the process: wait for that poll.
        status = agent.wait("local", lambda s: (s.get("execution") or {}).get("jobIds")
                            and s["execution"]["state"] == "RUNNING", timeout=300, what="the CASA job recorded, running")
        jsonschema.validate(status, STATUS_SCHEMA)
        execution = status["execution"]
        assert execution["backend"] == "local" and execution["state"] == "RUNNING", execution
        (job,) = execution["jobIds"]
        host, pid, start = job.split(":")
        pid = int(pid)
        assert start_time(pid) == start, "the job id is the job's pid and start time"
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
        assert start_time(pid) == start, "CASA outlives the killed agent"
        agent.start()
        wait_until(lambda: '"message":"re-attaching to the batch job' in agent.logs[-1].read_text(), 60,
                   "the restarted agent to re-attach")
        release.touch()
        status = agent.wait_terminal("local", timeout=600)
        assert status["state"] == "succeeded", json.dumps(status.get("error"))
        assert status["execution"]["jobIds"] == [job], status["execution"]
        log = agent.logs[-1].read_text()
        assert '"message":"re-attaching to the batch job' in log and '"message":"batch job submitted"' not in log
        assert "stopping processes left in the working directory" not in log
        delivered = pathlib.Path(status["result"]["deliveryPath"])
        assert (delivered / "casa-stdout.log").read_text().count("preflight ok") == 1, "CASA ran once"
        for ms in status["result"]["measurementSets"]:
            code, report = compare_ms(delivered / ms, FIXTURE / "reference" / ms)
            assert code == 0, f"{ms} differs from the reference: {report}"
        assert agent.stop() == 0
    finally:
        nginx.stop()
