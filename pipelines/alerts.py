"""Alerts for a night that went wrong: the message a group robot posts when a run fails.

Plain functions, no Dagster (the thin sensor is `assets/alerts.py`): what failed is described
by a `RunFailure` (job, run, failed steps, error), turned into the JSON body that WeCom
(企业微信) or DingTalk group robots accept, and posted to the webhook named by
`ALERT_WEBHOOK_URL` (pipelines/config.py, `AlertSettings`).

The error comes from a step: a source's error text, a library's exception. It is scrubbed
before it goes anywhere (registered secrets, ID-number-like and phone-like runs, words that
look like a person's name; `pipelines.logging_privacy.scrub`), cut to a length both robots
take, and the webhook's own key is never written into a message or an exception.

Both robots answer HTTP 200 with a JSON `errcode` (0: posted): anything else is a failure to
deliver, raised (scrubbed) so the sensor's tick fails and the alert is tried again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import urllib.parse
from dataclasses import dataclass, field

import requests

from pipelines.logging_privacy import scrub
from pipelines.privacy import mask_names_in

WECOM = "wecom"
DINGTALK = "dingtalk"
ROBOT_KINDS = (WECOM, DINGTALK)
# WeCom's markdown content takes at most 4,096 bytes; an error is cut well below it, so the
# whole message (in UTF-8, three bytes a Chinese character) always fits both robots.
MAX_ERROR_CHARACTERS = 600
MAX_STEPS_LISTED = 10
TITLE = "志愿服务数据同步失败 / sync failed"
RUNBOOK = "docs/RUNBOOK.md"  # what the engineer on call does for each failure


class AlertDeliveryError(RuntimeError):
    """The robot did not take the message (HTTP error or a non-zero errcode)."""


@dataclass(frozen=True)
class RunFailure:
    """What an on-call engineer needs from a failed run, nothing personal in it once masked."""

    job_name: str
    run_id: str
    failed_steps: tuple[str, ...] = ()
    error: str = ""
    run_url: str = ""  # a link to the run in the Dagster UI, when its address is known
    tags: dict[str, str] = field(default_factory=dict)


def masked_error(text: str | None, limit: int = MAX_ERROR_CHARACTERS) -> str:
    """An error text safe for a chat group: secrets, personal numbers and name-like words
    masked, one line per line of the original, cut to `limit` characters."""
    clean = mask_names_in(scrub(text or "")).strip()
    if len(clean) > limit:
        clean = clean[:limit].rstrip() + f"…(+{len(clean) - limit} characters)"
    return clean


# What makes a link or an image in a robot's Markdown (`](`, and `][` / `]:` of a reference
# link) and a tag (WeCom's <font>, an autolink <http://…>): the bracket and the angle brackets
# become their full-width look-alikes, which both robots show as plain text. ([Errno 28] stays.)
_LINK_BRACKET = re.compile(r"\](?=[(\[:])")
_ANGLES = str.maketrans({"<": "＜", ">": "＞"})


def inert_error(text: str) -> str:
    """An error line as plain text in the group chat: the error may quote what a source
    platform answered (its `msg`), and `[点我](http://…)` there would be a live link in the
    on-call engineers' chat."""
    return _LINK_BRACKET.sub("］", text).translate(_ANGLES)


def robot_kind(webhook_url: str, configured: str = "") -> str:
    """Which robot a webhook belongs to: as configured, else by its host (WeCom's
    qyapi.weixin.qq.com, DingTalk's oapi.dingtalk.com), else WeCom's format."""
    if configured:
        kind = configured.strip().lower()
        if kind not in ROBOT_KINDS:
            raise ValueError(f"ALERT_WEBHOOK_KIND must be one of {', '.join(ROBOT_KINDS)}, not {kind!r}")
        return kind
    host = urllib.parse.urlsplit(webhook_url).hostname or ""
    return DINGTALK if host.endswith("dingtalk.com") else WECOM


def failure_markdown(failure: RunFailure) -> str:
    """The alert as Markdown both robots render (headings, bold, quotes, inline code)."""
    steps = list(failure.failed_steps[:MAX_STEPS_LISTED])
    more = len(failure.failed_steps) - len(steps)
    steps_text = ", ".join(f"`{step}`" for step in steps) or "(the run failed outside a step)"
    if more > 0:
        steps_text += f" (+{more} more)"
    lines = [
        f"### {TITLE}",
        f"> job: **{failure.job_name}**",
        f"> run: `{failure.run_id}`",
        f"> failed step: {steps_text}",
    ]
    error = masked_error(failure.error)
    if error:
        lines += ["", "error:", "", *(f"> {inert_error(line)}" for line in error.splitlines() if line.strip())]
    lines += ["", f"what to do: {RUNBOOK}, by the error's first words"]
    if failure.run_url:
        lines += ["", f"[open the run in Dagster]({failure.run_url})"]
    return "\n".join(lines)


def wecom_payload(failure: RunFailure) -> dict:
    """The body of a WeCom group robot message (msgtype markdown)."""
    return {"msgtype": "markdown", "markdown": {"content": failure_markdown(failure)}}


def dingtalk_payload(failure: RunFailure) -> dict:
    """The body of a DingTalk group robot message (msgtype markdown: a title and a text)."""
    return {"msgtype": "markdown", "markdown": {"title": TITLE, "text": failure_markdown(failure)}}


def alert_payload(failure: RunFailure, kind: str) -> dict:
    return dingtalk_payload(failure) if kind == DINGTALK else wecom_payload(failure)


def dingtalk_signed_url(webhook_url: str, secret: str, now_ms: int | None = None) -> str:
    """A DingTalk webhook URL with its 加签 signature: HMAC-SHA256 of "timestamp\\nsecret"
    under the secret, Base64, URL-encoded (DingTalk's documented scheme)."""
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    separator = "&" if "?" in webhook_url else "?"
    return f"{webhook_url}{separator}timestamp={timestamp}&sign={sign}"


def post_alert(webhook_url: str, payload: dict, *, kind: str = WECOM, secret: str = "",
               timeout: float = 10.0) -> None:
    """Post `payload` to the robot; raises AlertDeliveryError when it was not taken. The
    webhook URL carries the robot's key: it never appears in what is raised."""
    url = dingtalk_signed_url(webhook_url, secret) if kind == DINGTALK and secret else webhook_url
    try:
        response = requests.post(url, json=payload, timeout=timeout)
    except requests.RequestException as error:
        raise AlertDeliveryError(f"the alert webhook could not be reached ({type(error).__name__})") from None
    if response.status_code != 200:
        raise AlertDeliveryError(f"the alert webhook answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise AlertDeliveryError("the alert webhook answered something that is not JSON") from None
    if not isinstance(answer, dict) or answer.get("errcode", 0) != 0:
        code = answer.get("errcode") if isinstance(answer, dict) else None
        message = scrub(answer.get("errmsg", "")) if isinstance(answer, dict) else ""
        raise AlertDeliveryError(f"the alert robot refused the message: errcode {code} {message}".strip())
