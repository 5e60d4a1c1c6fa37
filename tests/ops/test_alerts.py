"""Run-failure alerts: the message a WeCom or DingTalk group robot gets when a night goes
wrong, with the failed step and an error that shows no personal number, name or secret.

Delivered over real HTTP to a local robot (tests/ops/receiver.py), from a real failed Dagster
run through the real sensor; the end-to-end path (daemon, PostgreSQL instance) is in
tests/ops/test_deployment.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus, urlsplit

import dagster as dg
import pytest

from assets.alerts import run_failure_alert
from pipelines.alerts import (
    AlertDeliveryError,
    RunFailure,
    dingtalk_payload,
    dingtalk_signed_url,
    masked_error,
    post_alert,
    robot_kind,
    wecom_payload,
)
from pipelines.logging_privacy import register_secret
from tests.ops.receiver import RobotReceiver

PHONE = "13812345678"
RESIDENT_ID = "52010219900101123X"
FULL_NAME = "张小明"
ROOT = Path(__file__).resolve().parents[2]
HOSTILE_ERROR = f"ValueError: volunteer {FULL_NAME} (phone {PHONE}, ID {RESIDENT_ID}) was refused"


def test_the_error_is_masked_and_cut():
    masked = masked_error(HOSTILE_ERROR)
    assert PHONE not in masked and RESIDENT_ID not in masked and FULL_NAME not in masked
    assert "138****5678" in masked and "5201**********123X" in masked and "张**" in masked
    register_secret("s3cr3t-robot-token")
    assert "s3cr3t-robot-token" not in masked_error("GET /send?token=s3cr3t-robot-token failed")
    long = masked_error("x" * 5000)
    assert len(long) < 700 and long.endswith("characters)")


def test_wecom_and_dingtalk_payloads_have_the_shape_the_robots_accept():
    failure = RunFailure("sync_all", "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab",
                         ("raw__national_volunteers",), HOSTILE_ERROR, "http://dagster.example/runs/0f1e")
    wecom = wecom_payload(failure)
    assert wecom["msgtype"] == "markdown" and set(wecom["markdown"]) == {"content"}
    content = wecom["markdown"]["content"]
    assert "sync_all" in content and "`raw__national_volunteers`" in content and failure.run_id in content
    assert "http://dagster.example/runs/0f1e" in content
    assert len(content.encode("utf-8")) <= 4096  # WeCom's limit for markdown content
    dingtalk = dingtalk_payload(failure)
    assert dingtalk["msgtype"] == "markdown" and set(dingtalk["markdown"]) == {"title", "text"}
    assert dingtalk["markdown"]["text"] == content
    for text in (content, dingtalk["markdown"]["title"]):
        assert PHONE not in text and RESIDENT_ID not in text and FULL_NAME not in text


def test_the_robot_is_told_by_its_host_or_by_configuration():
    assert robot_kind("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k") == "wecom"
    assert robot_kind("https://oapi.dingtalk.com/robot/send?access_token=t") == "dingtalk"
    assert robot_kind("http://127.0.0.1:9000/hook", "DingTalk") == "dingtalk"
    with pytest.raises(ValueError, match="ALERT_WEBHOOK_KIND"):
        robot_kind("http://127.0.0.1:9000/hook", "slack")


def test_dingtalk_signature_is_dingtalks_documented_scheme():
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", "SEC-demo", now_ms=1700000000000)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["t"] and query["timestamp"] == ["1700000000000"]
    expected = base64.b64encode(
        hmac.new(b"SEC-demo", b"1700000000000\nSEC-demo", hashlib.sha256).digest()).decode()
    assert unquote_plus(url.split("sign=")[1]) == expected


def test_delivery_over_http_and_a_refusal_that_names_no_key():
    failure = RunFailure("pull_raw", "run-1", ("raw__provincial_volunteers",), "boom")
    with RobotReceiver() as robot:
        post_alert(f"{robot.url}/cgi-bin/webhook/send?key=robot-key-123456", wecom_payload(failure))
        post_alert(f"{robot.url}/robot/send?access_token=t", dingtalk_payload(failure), kind="dingtalk", secret="SEC-x")
        assert [m.path for m in robot.messages] == ["/cgi-bin/webhook/send", "/robot/send"]
        assert robot.messages[0].body == wecom_payload(failure)
        assert set(robot.messages[1].query) == {"access_token", "timestamp", "sign"}
    with RobotReceiver(errcode=93000) as refusing:
        with pytest.raises(AlertDeliveryError, match="errcode 93000") as refused:
            post_alert(f"{refusing.url}/send?key=robot-key-123456", wecom_payload(failure))
        assert "robot-key-123456" not in str(refused.value)


@dg.op
def refuse_a_volunteer():
    raise ValueError(HOSTILE_ERROR)


@dg.job
def nightly_job_that_fails():
    refuse_a_volunteer()


def failure_context(instance: dg.DagsterInstance) -> dg.RunFailureSensorContext:
    result = nightly_job_that_fails.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_event=failure[0].event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=run,
    ).for_run_failure()


def test_a_failed_run_reaches_the_robot_with_its_step_and_a_masked_error(monkeypatch):
    with dg.instance_for_test() as instance, RobotReceiver() as robot:
        context = failure_context(instance)
        monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
        assert isinstance(run_failure_alert(context), dg.SkipReason)  # no webhook: nothing sent
        assert robot.messages == []

        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{robot.url}/cgi-bin/webhook/send?key=robot-key-abcdef")
        monkeypatch.setenv("ALERT_WEBHOOK_KIND", "wecom")
        monkeypatch.setenv("DAGSTER_UI_URL", "http://dagster.internal:3000/")
        run_failure_alert(context)
        [message] = robot.messages
    content = message.body["markdown"]["content"]
    assert message.body["msgtype"] == "markdown"
    assert "nightly_job_that_fails" in content and "`refuse_a_volunteer`" in content
    assert context.dagster_run.run_id in content
    assert f"http://dagster.internal:3000/runs/{context.dagster_run.run_id}" in content
    assert "was refused" in content and "138****5678" in content
    assert PHONE not in content and RESIDENT_ID not in content and FULL_NAME not in content


@dg.op
def land_pages():
    return 1


@dg.op
def stage_tables(_pages):
    os.kill(os.getpid(), signal.SIGKILL)  # the out-of-memory killer, mid-step


@dg.job(executor_def=dg.in_process_executor)  # as sync_all: its steps in the run's process
def nightly_job_killed():
    stage_tables(land_pages())


def killed_run_context(instance: dg.DagsterInstance) -> dg.RunFailureSensorContext:
    """A run whose process was SIGKILLed in its second step, then reported as Dagster's code
    server reports it (its words for the signal, then the run marked failed)."""
    script = ("import dagster as dg, sys\n"
              "from tests.ops.test_alerts import nightly_job_killed\n"
              "instance = dg.DagsterInstance.from_ref(dg._core.instance.InstanceRef.from_dir(sys.argv[1]))\n"
              "dg.execute_job(dg.reconstructable(nightly_job_killed), instance=instance)\n")
    child = subprocess.run([sys.executable, "-c", script, instance.root_directory],
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.STARTED  # nobody in the killed process said otherwise
    instance.report_engine_event(
        f"[DagsterApiServer] Run execution process for {run.run_id} was terminated by signal 9 (SIGKILL). "
        "This usually indicates that the process was killed by the operating system due to running "
        "out of memory. Possible solutions include increasing the amount of memory available to the run.",
        instance.get_run_by_id(run.run_id))
    instance.report_run_failed(instance.get_run_by_id(run.run_id))
    failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_event=failure[0].event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=instance.get_run_by_id(run.run_id),
    ).for_run_failure()


def test_a_killed_run_alert_says_it_was_killed_in_which_step_and_what_to_do(monkeypatch, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, RobotReceiver() as robot:
        context = killed_run_context(instance)
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{robot.url}/cgi-bin/webhook/send?key=robot-key-abcdef")
        run_failure_alert(context)
        [message] = robot.messages
    content = message.body["markdown"]["content"]
    assert "`stage_tables`" in content  # the step it was in, not "(the run failed outside a step)"
    assert "terminated by signal 9 (SIGKILL)" in content and "It was in step stage_tables" in content
    assert "launch the job again" in content and "docs/RUNBOOK.md" in content
    assert "marked as failed from outside the execution context" not in content


def _alert_for_failed_run(job, monkeypatch) -> str:
    """The failure alert's text for one failed run of `job`, as the sensor sends it."""
    with dg.instance_for_test() as instance, RobotReceiver() as robot:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        failure = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=failure[0].event_log_entry.dagster_event,
            dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id)).for_run_failure()
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{robot.url}/cgi-bin/webhook/send?key=robot-key-abcdef")
        run_failure_alert(context)
        [message] = robot.messages
    return message.body["markdown"]["content"]


@dg.op
def stage_on_a_full_disk():
    raise dg.Failure("DataDirUnwritable: [Errno 28] cannot write /data/state/x.parquet: the file system is full.")


@dg.job
def nightly_job_on_a_full_disk():
    stage_on_a_full_disk()


def test_a_step_failure_reads_from_its_own_first_words(monkeypatch):
    """The runbook is read by the error's first words: not Dagster's class path before them."""
    content = _alert_for_failed_run(nightly_job_on_a_full_disk, monkeypatch)
    assert "> stage_on_a_full_disk: DataDirUnwritable: [Errno 28]" in content
    assert "dagster._core" not in content


NATIONAL_REFUSED = ("national source, endpoint /oauth/token: the token endpoint refused the client credentials "
                    "(HTTP 401); check NATIONAL_CLIENT_ID / NATIONAL_CLIENT_SECRET")
PROVINCIAL_REFUSED = ("provincial source, endpoint /open/v2/activities: the platform refused our signature "
                      "(code 40101); check PROVINCIAL_APP_KEY / PROVINCIAL_APP_SECRET")


def _skipped(source: str, reason: str):
    from pipelines.source_outages import REFUSED, Outage, SourceSkipped

    return SourceSkipped(Outage(source, "evaluations", REFUSED, "/oauth/token", reason))


@dg.op
def raw__national_evaluations():
    raise RuntimeError(NATIONAL_REFUSED)


@dg.op
def raw__provincial_activities():
    raise RuntimeError(PROVINCIAL_REFUSED)


def _skipped_op(name: str, source: str, reason: str):
    @dg.op(name=name)
    def skipped_stream():
        raise _skipped(source, reason)

    return skipped_stream


NATIONAL_SKIPPED = [_skipped_op(f"raw__national_{s}", "national", NATIONAL_REFUSED)
                    for s in ("projects", "service_records", "teams", "volunteers")]
PROVINCIAL_SKIPPED = [_skipped_op(f"raw__provincial_{s}", "provincial", PROVINCIAL_REFUSED)
                      for s in ("redemptions", "service_logs", "stations", "teams", "volunteers")]


@dg.job(executor_def=dg.in_process_executor)
def nightly_job_with_both_sources_refused():  # in the order sync_all runs them
    raw__national_evaluations()
    for op in NATIONAL_SKIPPED:
        op()
    raw__provincial_activities()
    for op in PROVINCIAL_SKIPPED:
        op()


def test_both_sources_refusing_are_both_in_the_alert(monkeypatch):
    """Seen under the daemon with both sources' credentials rotated: the national streams'
    'not tried again' lines filled the alert and the provincial cause was cut off."""
    content = _alert_for_failed_run(nightly_job_with_both_sources_refused, monkeypatch)
    assert "check NATIONAL_CLIENT_ID / NATIONAL_CLIENT_SECRET" in content
    assert "check PROVINCIAL_APP_KEY / PROVINCIAL_APP_SECRET" in content
    assert "not tried after their source failed earlier in this run: raw__national_projects" in content


def test_a_source_s_message_in_the_error_is_no_link_image_or_tag_in_the_chat():
    """The error may quote a source platform's `msg`: in the robot's Markdown it stays text."""
    from markdown_it import MarkdownIt

    quoted = ('SourceError: provincial /api/v1/teams: code 50000: [点我核实](http://evil.example/login) '
              '![](http://evil.example/p.png) <font color="warning">紧急</font> [又一个][1]\n[1]: http://evil.example')
    failure = RunFailure("sync_all", "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab", ("raw__provincial_teams",), quoted,
                         "http://dagster.example/runs/0f1e")
    content = wecom_payload(failure)["markdown"]["content"]
    error = content.split("error:", 1)[1].split("what to do:", 1)[0]
    page = MarkdownIt("commonmark", {"html": True}).render(error)
    assert "<a " not in page and "<img" not in page and "<font" not in page
    assert "点我核实" in error and "http://evil.example/login" in error  # the words are kept, as text
    assert "[open the run in Dagster](http://dagster.example/runs/0f1e)" in content  # our own link stays
