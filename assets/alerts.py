"""The run-failure sensor: a failed run of any job of this code location posts an alert to
the WeCom or DingTalk group robot named by `ALERT_WEBHOOK_URL` (pipelines/alerts.py builds
the message and masks the error; here only the wiring).

It ships running: with no webhook set it does nothing, so a deployment that sets the
variable is alerted from its first night. A robot that does not take the message fails the
tick (the error says why, never the webhook's key), and the daemon tries again at the next.
"""


from dagster import DagsterEventType, DefaultSensorStatus, RunFailureSensorContext, SkipReason, run_failure_sensor

from pipelines.alerts import RunFailure, alert_payload, post_alert, robot_kind
from pipelines.source_outages import SKIPPED_AFTER_OUTAGE
from pipelines.config import AlertSettings
from pipelines.logging_privacy import register_secret

# How often the daemon looks for failed runs: an alert within a minute of the failure.
ALERT_INTERVAL_SECONDS = 20


# How Dagster names a `Failure` a step raised, before its message: words for programmers
# that push what the engineer must read (DataDirUnwritable: …, check NATIONAL_API_URL) along.
DAGSTER_FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "


def root_error(error) -> str:
    """The message of the error that started it all: Dagster wraps what a step raised
    ("Error occurred while executing op ...") and keeps the step's own error as the cause."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return (error.message or "").strip().removeprefix(DAGSTER_FAILURE_PREFIX) if error is not None else ""


# What the code server or run monitoring says when a run's process ended without ending the
# run (killed: the out-of-memory killer, a `kill -9`, the daemon stopped with its runs).
PROCESS_ENDED = ("Run execution process for", "is gone from this host")
STEP_ENDED = (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED)
KILLED_ADVICE = ("Nothing is half-written; launch the job again: it resumes from the checkpoints "
                 "(docs/RUNBOOK.md).")


def steps_under_way(events) -> list[str]:
    """The steps a run started and never ended: where its process was when it died."""
    started, ended = [], set()
    for event in events:
        if event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START and event.step_key not in started:
            started.append(event.step_key)
        elif event.event_type in STEP_ENDED:
            ended.add(event.step_key)
    return [step for step in started if step not in ended]


def process_end_of(events) -> str:
    """Why the run's process ended, in the words of whoever saw it end (its first sentence:
    Dagster goes on to guess at causes), or "" when nobody said."""
    said = [event.message or "" for event in events
            if event.event_type in (DagsterEventType.ENGINE_EVENT, DagsterEventType.RUN_FAILURE)
            and any(words in (event.message or "") for words in PROCESS_ENDED)]
    if not said:
        return ""
    text = said[-1].removeprefix("[DagsterApiServer] ").strip()
    # run monitoring quotes the launcher's words: "Detected run worker status FAILED: '…'. …"
    text = text.partition("FAILED: '")[2] or text
    first, dot, _ = text.partition(". ")
    return first + dot.strip()


def killed_run_error(context: RunFailureSensorContext) -> tuple[list[str], str]:
    """For a run that failed outside any step (its process killed): the steps it was in and
    what happened, with what to do."""
    events = [entry.dagster_event for entry in context.instance.all_logs(context.dagster_run.run_id)
              if entry.dagster_event is not None]
    steps, reason = steps_under_way(events), process_end_of(events)
    if not reason:
        return steps, context.failure_event.message or ""
    during = f" It was in step {', '.join(steps)}." if steps else ""
    return steps, f"{reason}{during} {KILLED_ADVICE}"


def run_failure_of(context: RunFailureSensorContext, ui_url: str = "") -> RunFailure:
    """The failed run as the alert describes it: its job, its failed steps and their errors."""
    run = context.dagster_run
    steps, errors, skipped = [], [], []
    for event in context.get_step_failure_events():
        if event.step_key and event.step_key not in steps:
            steps.append(event.step_key)
        error = root_error(getattr(event.event_specific_data, "error", None))
        if error.endswith(SKIPPED_AFTER_OUTAGE):
            skipped.append(event.step_key)  # the cause is its source's first failed stream's
        elif error:
            errors.append(f"{event.step_key}: {error}")
    if skipped:
        # one line for them, after every cause: listed in full they pushed a second source's
        # cause past the cut (both sources refusing our credentials showed only the first)
        errors.append(f"not tried after their source failed earlier in this run: {', '.join(skipped)}")
    if not errors:
        steps, error = killed_run_error(context)
        errors.append(error)
    return RunFailure(
        job_name=run.job_name,
        run_id=run.run_id,
        failed_steps=tuple(steps),
        error="\n".join(errors),
        run_url=f"{ui_url}/runs/{run.run_id}" if ui_url else "",
    )


@run_failure_sensor(
    name="run_failure_alert",
    minimum_interval_seconds=ALERT_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts a failed run (job, failed steps, masked error) to the WeCom or DingTalk "
                "group robot of ALERT_WEBHOOK_URL; does nothing while it is unset.",
)
def run_failure_alert(context: RunFailureSensorContext):
    settings = AlertSettings.from_env()
    if not settings.webhook_url:
        return SkipReason("ALERT_WEBHOOK_URL is not set: no alert sent")
    register_secret(settings.webhook_url)  # its key must never reach a log line
    register_secret(settings.webhook_secret)
    kind = robot_kind(settings.webhook_url, settings.webhook_kind)
    failure = run_failure_of(context, settings.dagster_ui_url)
    post_alert(settings.webhook_url, alert_payload(failure, kind), kind=kind, secret=settings.webhook_secret)
    context.log.info(f"alert sent to the {kind} robot for run {failure.run_id} of {failure.job_name}")


sensors = [run_failure_alert]
