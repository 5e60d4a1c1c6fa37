"""The run-failure sensor: a failed run of any job of this code location posts an alert to
the WeCom or DingTalk group robot named by `ALERT_WEBHOOK_URL` (pipelines/alerts.py builds
the message and masks the error; here only the wiring).

It ships running: with no webhook set it does nothing, so a deployment that sets the
variable is alerted from its first night. A robot that does not take the message fails the
tick (the error says why, never the webhook's key), and the daemon tries again at the next.
"""


from dagster import DefaultSensorStatus, RunFailureSensorContext, SkipReason, run_failure_sensor

from pipelines.alerts import RunFailure, alert_payload, post_alert, robot_kind
from pipelines.config import AlertSettings
from pipelines.logging_privacy import register_secret

# How often the daemon looks for failed runs: an alert within a minute of the failure.
ALERT_INTERVAL_SECONDS = 20


def root_error(error) -> str:
    """The message of the error that started it all: Dagster wraps what a step raised
    ("Error occurred while executing op ...") and keeps the step's own error as the cause."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return (error.message or "").strip() if error is not None else ""


def run_failure_of(context: RunFailureSensorContext, ui_url: str = "") -> RunFailure:
    """The failed run as the alert describes it: its job, its failed steps and their errors."""
    run = context.dagster_run
    steps, errors = [], []
    for event in context.get_step_failure_events():
        if event.step_key and event.step_key not in steps:
            steps.append(event.step_key)
        error = root_error(getattr(event.event_specific_data, "error", None))
        if error:
            errors.append(f"{event.step_key}: {error}")
    if not errors and context.failure_event.message:
        errors.append(context.failure_event.message)
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
