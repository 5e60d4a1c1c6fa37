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

`shown_name` is for a name somebody else chose (a JSON key a source sent, the file name a
steward gave a workbook): such a name can be a person's name or number typed where a key
belongs (`tel138…`, `联系人王芳`), which masking numbers does not catch. It is shown only
when shaped like the contracts' own names, else as a short keyed hash.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback

from pipelines.privacy import hmac_hex, redact

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


# The contracts' field names (albp0029, updateTime, isdelete, share_consent) and the export's
# file name: ASCII, a letter first, short, a few digits at most (a mobile has 11, a landline
# 7 or 8 without its area code, an ID number 15 or 18). Han text is never shown: it may be a
# name (皇甫嵩, 联系人王芳) that no pattern tells from a word.
SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_DIGITS_IN_A_SAFE_NAME = 6
NAME_DIGEST_CHARS = 8


def is_safe_name(name: str) -> bool:
    """Whether `name` (a field name, a file name without its extension) may be shown as it is."""
    return (SAFE_NAME.fullmatch(name) is not None
            and sum(character.isdigit() for character in name) <= MAX_DIGITS_IN_A_SAFE_NAME)


def name_digest(name: str, key: str) -> str:
    """A short keyed hash of `name` (HMAC-SHA256 under `key`, PII_HASH_KEY): the same name
    gives the same digest, so an engineer can tell names apart and find one again, and a
    guessed name cannot be checked without the key. Its own purpose prefix: never the
    first characters of the hash the warehouse keeps for the same text."""
    return hmac_hex("shown-name:" + name, key)[:NAME_DIGEST_CHARS]


def shown_name(name: str, key: str) -> str:
    """`name` when it is safe to show (`is_safe_name`), else `#` and its digest."""
    return name if is_safe_name(name) else "#" + name_digest(name, key)
