"""Step 5 on a real single-node Slurm cluster (issue 12, execution backends), through the real binary with real CASA.

The cluster is started by scripts/services/slurm.sh (what a new user runs too) and stopped by PID. The tests skip
only when that script cannot install Slurm on this machine (exit status 3: not root, no apt); under CI
(`CI` set) they fail instead. Processes are found by their working directory under the test's own tmp_path, so
CASA runs of other tests on the same machine never count."""
import json
import os
import pathlib
import signal
import subprocess

import jsonschema
import pytest

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents, FIXTURE, MOUS_A, ROOT, SERVICES, RestoreAgent, compare_ms, require_prerequisites, start_nginx, wait_until,
)

STATUS_SCHEMA = json.loads((ROOT / "schemas/status.schema.json").read_text())


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    require_prerequisites()
    run = tmp_path_factory.mktemp("slurm")
    # With accounting (slurmdbd and a private MariaDB): sacct knows the jobs the controller has forgotten.
    r = subprocess.run(["sh", str(SERVICES / "slurm.sh"), "start", str(run), "2"], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "SLURM_ACCOUNTING": "1"})
    if r.returncode == 3 and not os.environ.get("CI"):
        pytest.skip(f"Slurm cannot be installed here: {r.stderr.strip()[-300:]}")
    assert r.returncode == 0, f"slurm.sh start failed ({r.returncode}): {r.stdout}{r.stderr}"
    conf = next(line.split("=", 1)[1] for line in r.stdout.splitlines() if line.startswith("SLURM_CONF="))
    yield {"conf": conf, "run": run}
    subprocess.run(["sh", str(SERVICES / "slurm.sh"), "stop", str(run)], capture_output=True, timeout=120)
    status = subprocess.run(["sh", str(SERVICES / "slurm.sh"), "status", str(run)], capture_output=True, text=True)
    assert status.returncode == 1 and "slurmctld not running" in status.stdout, status.stdout
    for daemon in ("slurmdbd", "mysqld"):
        assert not (run / f"{daemon}.pid").exists(), f"{daemon} stopped by slurm.sh stop"


def scontrol_job(conf, job_id):
    r = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True, env={**os.environ, "SLURM_CONF": conf})
    return dict(f.split("=", 1) for f in r.stdout.split() if "=" in f) if r.returncode == 0 else {}


def jobs_named(conf, prefix):
    r = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %j %T"], capture_output=True, text=True, check=True,
                       env={**os.environ, "SLURM_CONF": conf})
    return [line.split() for line in r.stdout.splitlines() if line.split()[1].startswith(prefix)]


def processes_in(directory):
    """Living processes whose working directory is under `directory` (the restore's CASA)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in "ZX" and cwd.startswith(str(directory)):
            found.append(int(pid))
    return found


def slurm_agent(tmp_path, url, slurm, monkeypatch, extra=None, **settings):
    monkeypatch.setenv("SLURM_CONF", slurm["conf"])
    execution = {"backend": "slurm", "slurm": {"pollSeconds": 0.5, **settings}}
    return RestoreAgent(tmp_path, url, extra={"execution": execution, **(extra or {})})


@pytest.fixture
def on_slurm(tmp_path, slurm, monkeypatch, agents):
    """The one end-to-end set-up of these tests: nginx as the archive store, and `start(**slurm_settings)` making
    and starting an agent with the Slurm backend (`extra=` for other configuration sections), registered for
    clean-up. An optional `sbatch` shim (`shim=` its script) goes first on PATH. Everything is stopped by PID."""
    nginx = start_nginx(FIXTURE / "store", tmp_path / "nginx")

    def start(shim=None, extra=None, **settings):
        if shim is not None:
            (tmp_path / "shim").mkdir(exist_ok=True)
            (tmp_path / "shim" / "sbatch").write_text(shim)
            (tmp_path / "shim" / "sbatch").chmod(0o755)
            monkeypatch.setenv("PATH", f"{tmp_path / 'shim'}:{os.environ['PATH']}")
        agent = slurm_agent(tmp_path, nginx.url, slurm, monkeypatch, extra=extra, **settings)
        agents.append(agent)
        return agent.start()

    try:
        yield start
    finally:
        nginx.stop()


def job_running(agent, name):
    return agent.wait(name, lambda s: (s.get("execution") or {}).get("state") == "RUNNING", timeout=300,
                      what="the Slurm job running")


def test_restore_on_slurm_survives_agent_kill_runs_casa_once_and_is_identical_to_the_local_restore(tmp_path, slurm, on_slurm):
    # The first sbatch submits the job, then hangs (a slow controller answer): the agent is killed right there,
    # between the submission and recording the job id, and must find the job by its name after the restart.
    marker = tmp_path / "sbatch-hung-once"
    agent = on_slurm(shim="#!/bin/sh\n"
                     "out=$(/usr/bin/sbatch \"$@\") || exit $?\n"
                     f"if [ ! -e '{marker}' ]; then : > '{marker}'; sleep 20; fi\n"
                     "echo \"$out\"\n")
    agent.drop("onslurm", {"mous": MOUS_A})
    agent.wait("onslurm", lambda s: (s.get("execution") or {}).get("state") == "submitting", timeout=300, what="the submission")
    wait_until(lambda: marker.exists() and jobs_named(slurm["conf"], "dropbox-onslurm"), 60, "the job submitted")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    assert agent.status("onslurm")["execution"]["jobIds"] == [], "killed before the id was recorded"
    agent.start()
    status = job_running(agent, "onslurm")
    jsonschema.validate(status, STATUS_SCHEMA)
    (job_id,) = status["execution"]["jobIds"]
    assert status["execution"]["backend"] == "slurm"
    # Resources from the plan: one core per EB (the demo MOUS has two) when cpusPerTask is not configured.
    assert scontrol_job(slurm["conf"], job_id).get("CPUs/Task") == "2"
    # CASA is running inside the job when the agent dies.
    wait_until(lambda: (agent.status("onslurm").get("progress") or {}).get("message", "").startswith("EB "), 120, "CASA progress from the job")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    assert scontrol_job(slurm["conf"], job_id).get("JobState") in ("RUNNING", "COMPLETING", "COMPLETED"), "the job outlives the agent"
    agent.start()
    status = agent.wait_terminal("onslurm", timeout=600)
    assert status["state"] == "succeeded", json.dumps(status.get("error"))
    jsonschema.validate(status, STATUS_SCHEMA)
    assert status["execution"] == {"backend": "slurm", "jobIds": [job_id], "state": "COMPLETED"}, status["execution"]
    assert status["attempt"] == 3
    # Re-attached, not resubmitted: Slurm knows one job for this request, and CASA started once.
    assert [j[0] for j in jobs_named(slurm["conf"], "dropbox-onslurm")] == [job_id]
    assert '"message":"found the job submitted before the agent restarted"' in agent.logs[1].read_text()
    for log in (agent.logs[1].read_text(), agent.logs[2].read_text()):
        # (The derivation's own job, dropbox-derive-onslurm…, is submitted after the restore: not counted here.)
        restore_submitted = [l for l in log.splitlines() if '"message":"batch job submitted"' in l and '"dropbox-onslurm' in l]
        assert '"message":"re-attaching to the batch job' in log and not restore_submitted, log[-3000:]
    completed = [line for line in (slurm["run"] / "jobcomp.txt").read_text().splitlines() if f"JobId={job_id} " in line]
    assert len(completed) == 1 and "JobState=COMPLETED" in completed[0], completed
    # CASA ran once: one casa log, one preflight in the output the job wrote (both delivered).
    delivered = pathlib.Path(status["result"]["deliveryPath"])
    assert len(list(delivered.glob("casa-*.log"))) == 2, sorted(p.name for p in delivered.iterdir())  # casa-<time>.log + casa-stdout.log
    assert (delivered / "casa-stdout.log").read_text().count("preflight ok") == 1
    # Identical to the local restore: the reference MSes are what the local backend delivers (test_e2e).
    assert status["result"]["measurementSets"]
    for ms in status["result"]["measurementSets"]:
        code, report = compare_ms(delivered / ms, FIXTURE / "reference" / ms)
        assert code == 0, f"{ms} differs from the local restore: {report}"
    assert agent.stop() == 0


def test_sbatch_failing_once_is_retried_then_cancel_scancels_and_leaves_no_casa(tmp_path, slurm, on_slurm):
    # A real sbatch behind a shim on PATH that refuses the first submission the way Slurm does.
    # First call: refused without submitting (retried); second: submitted, yet reported as failed (a timeout
    # after the controller accepted the job): the agent must find that job by name, not submit a second one.
    marker = tmp_path / "sbatch-failed-once"
    second = tmp_path / "sbatch-lied-once"
    agent = on_slurm(shim="#!/bin/sh\n"
                     f"if [ ! -e '{marker}' ]; then : > '{marker}'; "
                     "echo 'sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)' >&2; exit 1; fi\n"
                     f"if [ ! -e '{second}' ]; then : > '{second}'; /usr/bin/sbatch \"$@\" >/dev/null || exit $?; "
                     "echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2; exit 1; fi\n"
                     "exec /usr/bin/sbatch \"$@\"\n")
    agent.drop("stopme", {"mous": MOUS_A})
    status = job_running(agent, "stopme")
    (job_id,) = status["execution"]["jobIds"]
    assert marker.exists() and second.exists()
    log = agent.logs[-1].read_text()
    assert "submitting the batch job failed" in log and "Unable to contact slurm controller" in log and "Socket timed out" in log
    assert '"message":"the failed submission did submit the job"' in log
    assert [j[0] for j in jobs_named(slurm["conf"], "dropbox-stopme")] == [job_id], "one job, not two"
    wait_until(lambda: processes_in(tmp_path / "data"), 120, "CASA running in the job")
    agent.cli("cancel", "stopme", "--spool", str(agent.spool))
    status = agent.wait_terminal("stopme", timeout=120)
    assert status["state"] == "cancelled", json.dumps(status.get("error"))
    assert scontrol_job(slurm["conf"], job_id).get("JobState") == "CANCELLED"
    wait_until(lambda: not processes_in(tmp_path / "data"), 60, "no CASA process left")
    assert agent.stop() == 0


def test_a_partition_that_does_not_exist_fails_with_slurms_message(slurm, on_slurm):
    agent = on_slurm(partition="nosuchpartition")
    agent.drop("badpart", {"mous": MOUS_A})
    status = agent.wait_terminal("badpart", timeout=300)
    assert status["state"] == "failed"
    assert status["error"]["code"] == "jobSubmitFailed", status["error"]
    assert "Invalid partition name" in status["error"]["message"] and "3 tries" in status["error"]["message"], status["error"]
    assert "execution.slurm" in status["error"]["hint"]
    assert jobs_named(slurm["conf"], f"dropbox-") == [] or all("badpart" not in j[1] for j in jobs_named(slurm["conf"], "dropbox-"))
    assert agent.stop() == 0


def test_a_job_killed_at_its_time_limit_fails_with_slurms_reason(tmp_path, slurm, on_slurm):
    agent = on_slurm(timeLimit="1")
    agent.drop("toolong", {"mous": MOUS_A})
    status = job_running(agent, "toolong")
    (job_id,) = status["execution"]["jobIds"]
    # Real CASA that cannot finish within the minute: its processes are stopped (SIGSTOP) in the job; Slurm's
    # time limit ends them (SIGCONT, SIGTERM, SIGKILL after KillWait).
    pids = wait_until(lambda: processes_in(tmp_path / "data"), 120, "CASA running in the job")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    status = agent.wait_terminal("toolong", timeout=300)
    assert status["state"] == "failed"
    assert status["error"]["code"] == "jobTimeLimit", status["error"]
    assert f"job {job_id}" in status["error"]["message"] and "TIMEOUT" in status["error"]["message"] and "TimeLimit" in status["error"]["message"], status["error"]
    assert status["execution"]["state"] == "TIMEOUT"
    wait_until(lambda: not processes_in(tmp_path / "data"), 60, "no CASA process left")
    assert agent.stop() == 0


def test_check_cluster_runs_a_probe_job_that_sees_the_directories(tmp_path, slurm, monkeypatch):
    agent = slurm_agent(tmp_path, "http://127.0.0.1:9", slurm, monkeypatch)
    r = agent.cli("check", "--cluster", check=False)
    assert f"ok    execution: slurm: default partition, SLURM_CONF={slurm['conf']}" in r.stdout, r.stdout
    line = next((l for l in r.stdout.splitlines() if " cluster:" in l), "")
    assert line.startswith("ok    cluster: job ") and "saw 3 directories" in line and "shared with this host" in line, r.stdout
    assert not list((tmp_path / "data/restores").glob(".dropbox-agent-cluster-check-*")), "the probe's files are removed"
    # A partition the cluster does not have: Slurm's own message.
    bad = slurm_agent(tmp_path / "bad", "http://127.0.0.1:9", slurm, monkeypatch, partition="nosuchpartition")
    r = bad.cli("check", "--cluster", check=False)
    assert r.returncode == 1
    line = next((l for l in r.stdout.splitlines() if " cluster:" in l), "")
    assert line.startswith("FAIL  cluster:") and "Invalid partition name" in line, r.stdout


def test_a_node_failure_is_submitted_again_and_the_restore_still_matches(tmp_path, slurm, on_slurm):
    env = {**os.environ, "SLURM_CONF": slurm["conf"]}
    try:
        agent = on_slurm()
        agent.drop("nodefail", {"mous": MOUS_A})
        status = job_running(agent, "nodefail")
        (first,) = status["execution"]["jobIds"]
        wait_until(lambda: processes_in(tmp_path / "data"), 120, "CASA running in the job")
        # The node fails under the running job: Slurm ends it NODE_FAIL and kills its processes.
        subprocess.run(["scontrol", "update", "nodename=ci-node", "state=down", "reason=test-node-failure"], check=True, env=env)
        try:
            wait_until(lambda: scontrol_job(slurm["conf"], first).get("JobState") == "NODE_FAIL", 60, "the job ended NODE_FAIL")
            wait_until(lambda: not processes_in(tmp_path / "data"), 60, "the failed job's processes gone")
        finally:
            # The node comes back (slurmd re-registers; resuming an already returned node is refused, harmlessly).
            subprocess.run(["scontrol", "update", "nodename=ci-node", "state=resume"], env=env, capture_output=True)
        status = agent.wait_terminal("nodefail", timeout=600)
        assert status["state"] == "succeeded", json.dumps(status.get("error"))
        ids = status["execution"]["jobIds"]
        assert len(ids) == 2 and ids[0] == first and status["execution"]["state"] == "COMPLETED", status["execution"]
        log = agent.logs[-1].read_text()
        assert '"message":"submitting the job again"' in log and "NODE_FAIL" in log
        delivered = pathlib.Path(status["result"]["deliveryPath"])
        for ms in status["result"]["measurementSets"]:
            code, report = compare_ms(delivered / ms, FIXTURE / "reference" / ms)
            assert code == 0, f"{ms} differs from the local restore: {report}"
        assert agent.stop() == 0
    finally:
        subprocess.run(["scontrol", "update", "nodename=ci-node", "state=resume"], env=env, capture_output=True)


def test_a_job_over_its_memory_is_killed_by_slurm_and_fails_with_slurms_reason(tmp_path, slurm, on_slurm):
    # slurm.sh enforces memory without cgroups (JobAcctGatherParams=OverMemoryKill, sampled every second): CASA
    # alone (python with casatools) needs far more than 150 MB, so Slurm kills the job once CASA has started.
    agent = on_slurm(memory="150M")
    agent.drop("toobig", {"mous": MOUS_A})
    status = agent.wait_terminal("toobig", timeout=300)
    assert status["state"] == "failed", json.dumps(status, indent=1)
    (job_id,) = status["execution"]["jobIds"]
    assert status["error"]["code"] == "jobOutOfMemory", status["error"]
    message = status["error"]["message"]
    assert f"job {job_id}" in message and "exceeded memory limit" in message and "> 157286400" in message, message
    assert "execution.slurm.memory" in status["error"]["hint"]
    assert scontrol_job(slurm["conf"], job_id).get("MinMemoryNode") == "150M"
    wait_until(lambda: not processes_in(tmp_path / "data"), 60, "no CASA process left")
    assert agent.stop() == 0


def test_a_preempted_job_is_submitted_again_up_to_agent_max_attempts(tmp_path, slurm, on_slurm):
    # slurm.sh's partition "urgent" preempts (cancels) jobs of "debug" whose cores it needs. With two cores per
    # job and agent.maxAttempts = 2, the restore is preempted twice: submitted again once, then failed.
    env = {**os.environ, "SLURM_CONF": slurm["conf"]}
    agent = on_slurm(cpusPerTask=2, extra={"agent": {"maxAttempts": 2}})
    agent.drop("preempted", {"mous": MOUS_A})
    preempted = []
    for submission in (1, 2):
        status = agent.wait("preempted", lambda s: len((s.get("execution") or {}).get("jobIds", [])) == submission
                            and s["execution"]["state"] == "RUNNING", timeout=300, what=f"submission {submission} running")
        job_id = status["execution"]["jobIds"][-1]
        urgent = subprocess.run(["sbatch", "--parsable", "--partition=urgent", "--cpus-per-task=2", "--job-name=urgent",
                                 f"--output={tmp_path}/urgent-%j.out", "--wrap", "sleep 1"],
                                capture_output=True, text=True, check=True, env=env).stdout.strip()
        wait_until(lambda: scontrol_job(slurm["conf"], job_id).get("JobState") == "PREEMPTED", 60, f"job {job_id} preempted")
        wait_until(lambda: scontrol_job(slurm["conf"], urgent).get("JobState") == "COMPLETED", 120, "the urgent job done")
        preempted.append(job_id)
    status = agent.wait_terminal("preempted", timeout=300)
    assert status["state"] == "failed", json.dumps(status, indent=1)
    assert status["error"]["code"] == "jobPreempted", status["error"]
    assert "PREEMPTED" in status["error"]["message"] and "submitted 2 of agent.maxAttempts = 2 times" in status["error"]["message"]
    assert status["execution"] == {"backend": "slurm", "jobIds": preempted, "state": "PREEMPTED"}, status["execution"]
    log = agent.logs[-1].read_text()
    assert log.count('"message":"submitting the job again"') == 1, log[-3000:]
    wait_until(lambda: not processes_in(tmp_path / "data"), 60, "no CASA process left")
    assert agent.stop() == 0


@pytest.mark.parametrize("tracking", ["sacct", "exit record"])
def test_a_job_the_controller_forgot_while_the_agent_was_down_is_concluded_from_accounting_or_its_exit_record(tmp_path, slurm, on_slurm, tracking):
    # Once the controller has purged a job (MinJobAge after it ended, lowered for this test), accounting (sacct,
    # slurmdbd) still knows it; without accounting (slurmdbd stopped here) only the job's own exit record does.
    env = {**os.environ, "SLURM_CONF": slurm["conf"]}
    conf = pathlib.Path(slurm["conf"])
    original = conf.read_text()
    agent = on_slurm()
    agent.drop("forgotten", {"mous": MOUS_A})
    status = job_running(agent, "forgotten")
    (job_id,) = status["execution"]["jobIds"]
    wait_until(lambda: (agent.status("forgotten").get("progress") or {}).get("message", "").startswith("EB "), 120, "CASA progress from the job")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    try:
        conf.write_text(original.replace("MinJobAge=600", "MinJobAge=2"))
        subprocess.run(["scontrol", "reconfigure"], check=True, env=env)
        wait_until(lambda: not scontrol_job(slurm["conf"], job_id), 900, f"the controller to forget job {job_id}")
    finally:
        conf.write_text(original)
        subprocess.run(["scontrol", "reconfigure"], check=True, env=env)
    dbd = slurm["run"] / "slurmdbd.pid"
    sacct = lambda: subprocess.run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State"], capture_output=True, text=True, env=env, timeout=60)
    wait_until(lambda: sacct().stdout.strip() == f"{job_id}|COMPLETED", 60, "accounting to record the job's end")
    if tracking == "exit record":
        pid = int(dbd.read_text())
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pathlib.Path(f"/proc/{pid}").exists() or " Z " in pathlib.Path(f"/proc/{pid}/stat").read_text(), 30, "slurmdbd stopped")
        assert sacct().returncode != 0
    try:
        agent.start()
        status = agent.wait_terminal("forgotten", timeout=300)
    finally:
        if tracking == "exit record":
            subprocess.run(["slurmdbd"], check=True, env=env)
            wait_until(lambda: sacct().returncode == 0, 60, "slurmdbd back")
    assert status["state"] == "succeeded", json.dumps(status.get("error"))
    assert status["execution"] == {"backend": "slurm", "jobIds": [job_id], "state": "COMPLETED"}, status["execution"]
    log = agent.logs[-1].read_text()
    decided_by_record = '"message":"the scheduler no longer knows the batch job; its exit record decides"' in log
    assert decided_by_record == (tracking == "exit record"), log[-3000:]
    # (The derivation's own job, dropbox-derive-…, is submitted after the restore ended: not a second restore job.)
    restore_submitted = [l for l in log.splitlines() if '"message":"batch job submitted"' in l and '"dropbox-derive-' not in l]
    assert not restore_submitted and '"message":"submitting the job again"' not in log
    delivered = pathlib.Path(status["result"]["deliveryPath"])
    assert (delivered / "casa-stdout.log").read_text().count("preflight ok") == 1, "CASA ran once"
    for ms in status["result"]["measurementSets"]:
        code, report = compare_ms(delivered / ms, FIXTURE / "reference" / ms)
        assert code == 0, f"{ms} differs from the local restore: {report}"
    assert agent.stop() == 0
