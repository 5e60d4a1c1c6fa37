"""Keep secrets and personal numbers out of log lines and exception messages.

Regulation (志愿服务条例 art. 20) and the contract forbid a clear certificate number or phone
in the logs; the credentials must not leak there either. The connectors never format a record
into a message, but servers' error texts and third-party exception strings are not ours: every
such text goes through `scrub` before it is logged or raised. `scrub` masks the secrets the
clients registered (client secret, app secret, access tokens) and anything that looks like a
resident ID number or a mobile phone number. `RedactingFilter` applies the same to log records
of a logger, as a second line of defence.

The ID/phone patterns defer to `pipelines.privacy.redact` when that module is present (one
definition for the whole project); the fallback below covers the same shapes.
"""

from __future__ import annotations

import logging
import re
import threading

_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# 17 digits + check character, 15-digit legacy numbers, masked forms keep 4+4 and are fine.
# Full-width digits are folded first by the caller's normalizer upstream; here we look for
# ASCII shapes only, which is what logs and exception texts carry.
_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_PHONE_LIKE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")


def register_secret(value: str | None) -> None:
    """Remember a secret (credential, token) so that `scrub` masks it wherever it appears."""
    if value and len(value) >= 6:  # a very short value would mask ordinary words
        with _secrets_lock:
            _secrets.add(value)


def forget_secret(value: str | None) -> None:
    """Stop masking a secret that is no longer in use (an expired access token)."""
    with _secrets_lock:
        _secrets.discard(value or "")


def _fallback_redact(text: str) -> str:
    text = _ID_LIKE.sub(
        lambda m: m.group(0)[:4] + "*" * (len(m.group(0)) - 8) + m.group(0)[-4:], text
    )
    return _PHONE_LIKE.sub("***********", text)


def _project_redact():
    try:
        from pipelines.privacy import redact  # written by another module owner
    except Exception:  # noqa: BLE001 - absent or broken: the fallback still protects
        return _fallback_redact
    return redact


def scrub(text: object) -> str:
    """`text` with registered secrets, ID-number-like and phone-like substrings masked."""
    clean = str(text)
    with _secrets_lock:
        secrets_now = sorted(_secrets, key=len, reverse=True)
    for secret in secrets_now:
        if secret in clean:
            clean = clean.replace(secret, "[secret]")
    clean = _project_redact()(clean)
    # The project's redact may cover fewer shapes than ours; both passes are idempotent.
    return _fallback_redact(clean)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs the fully formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: leave it to logging
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_filter(logger_name: str = "pipelines") -> None:
    """Attach one RedactingFilter to the named logger (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
