"""Last line of defence for privacy in logs: every log record is redacted as it is made.

Code should never log a certificate number or phone in the first place; this catches the
one that slips through (a library's error message quoting a URL or a row). It wraps the
process-wide log record factory, so records made by Dagster's log manager, by `requests`
and by our own loggers all pass through `privacy.redact`.
"""

from __future__ import annotations

import logging

_installed = False


def install_log_redaction() -> None:
    """Make every LogRecord carry a redacted message (idempotent)."""
    global _installed
    if _installed:
        return
    from pipelines.privacy import redact

    base_factory = logging.getLogRecordFactory()

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = base_factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed %-format: leave it to the handler to report
            return record
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record

    logging.setLogRecordFactory(redacting_factory)
    _installed = True
