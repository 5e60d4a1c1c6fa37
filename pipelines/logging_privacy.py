"""Keep secrets and personal numbers out of log lines and exception messages.

Regulation (志愿服务条例 art. 20) and the contract forbid a clear certificate number or phone
in the logs; the credentials must not leak there either. The connectors never format a record
into a message, but servers' error texts and third-party exception strings are not ours: every
such text goes through `scrub` before it is logged or raised. `scrub` masks the secrets the
clients registered (client secret, app secret, access tokens) and, through
`pipelines.privacy.redact`, anything shaped like a resident ID number or a mobile phone.

`install_log_redaction` is the second line of defence: it wraps the process-wide log record
factory, so every record made by Dagster's log manager, by `requests` and by our own loggers
carries a scrubbed message, and a scrubbed traceback when it has one.
"""

from __future__ import annotations

import logging
import threading
import traceback

from pipelines.privacy import redact

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_factory_installed = False


def register_secret(value: str | None) -> None:
    """Remember a secret (credential, token) so that `scrub` masks it wherever it appears."""
    if value and len(value) >= 6:  # a very short value would mask ordinary words
        with _secrets_lock:
            _secrets.add(value)


def forget_secret(value: str | None) -> None:
    """Stop masking a secret that is no longer in use (an expired access token)."""
    with _secrets_lock:
        _secrets.discard(value or "")


def scrub(text: object) -> str:
    """`text` with registered secrets, ID-number-like and phone-like substrings masked."""
    clean = str(text)
    with _secrets_lock:
        secrets_now = sorted(_secrets, key=len, reverse=True)
    for secret in secrets_now:
        if secret in clean:
            clean = clean.replace(secret, "[secret]")
    return redact(clean)


def install_log_redaction() -> None:
    """Make every LogRecord of this process carry a scrubbed message (idempotent)."""
    global _factory_installed
    with _secrets_lock:
        if _factory_installed:
            return
        _factory_installed = True
    base_factory = logging.getLogRecordFactory()

    def scrubbing_factory(*args, **kwargs) -> logging.LogRecord:
        record = base_factory(*args, **kwargs)
        if record.exc_info and record.exc_info[0] is not None:
            # formatters reuse exc_text when it is set: the traceback goes out scrubbed
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed %-format is the handler's to report
            return record
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(scrubbing_factory)
