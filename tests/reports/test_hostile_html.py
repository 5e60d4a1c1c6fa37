"""Names operators typed, as markup, on the pages people open: a certificate page shows them
as text in a real browser (no script runs, nothing is fetched) and still verifies.

The statistics report shows no source text at all (figures, codes and our own labels), so a
hostile name cannot reach it; its offline, script-free drawing is tests/reports/test_report.py's.
"""

from __future__ import annotations

import datetime as dt

from pipelines.certificates.certificate import contents, read_certificate_page, render_html, sign, verify_contents
from pipelines.certificates.record import ServiceRecord

CHROMIUM = "/usr/bin/chromium"
KEY = "hostile-html-certificate-key-of-32-bytes"
HOSTILE_NAMES = [
    '<script>alert("org")</script>志愿服务队',
    '"><img src=x onerror=alert("img")>志愿服务队',
    '</style><script>alert("style")</script>志愿服务队',
    '</script><script>alert("island")</script>志愿服务队',
    'javascript:alert("url")',
    "<!--",
]


def hostile_certificate():
    record = ServiceRecord(
        volunteer_key="V0123456789ab", name_masked="张**", id_masked="5201**********1234",
        registered_on="2020-01-02", total_hours="12.50", services=len(HOSTILE_NAMES), services_in_both_systems=0,
        by_organization=[{"org_key": f"O{i:012d}", "name": name, "services": 1, "hours": "2.50"}
                         for i, name in enumerate(HOSTILE_NAMES)],
        by_project=[{"name": name, "organization": name, "services": 1, "hours": "2.50"} for name in HOSTILE_NAMES],
        by_year=[{"year": 2025, "services": len(HOSTILE_NAMES), "hours": "12.50"}],
    )
    return sign(contents(record, cert_type="resident_id", issuer_org_key="O000000000000",
                         issuer_name=HOSTILE_NAMES[3], issued_on=dt.date(2026, 6, 30)), KEY)


def test_a_certificate_shows_markup_names_as_text_runs_nothing_and_still_verifies(tmp_path):
    from playwright.sync_api import sync_playwright

    certificate = hostile_certificate()
    page_html = render_html(certificate)
    assert read_certificate_page(page_html) == certificate  # the data island is not cut short
    assert verify_contents(certificate, KEY, page=page_html).authentic
    path = tmp_path / "certificate.html"
    path.write_text(page_html, encoding="utf-8")

    dialogs, fetched = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                          else (fetched.append(route.request.url), route.abort()))
            page = context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_timeout(200)
            shown = page.inner_text("body")
            elements = page.evaluate("""() => ({
                scripts: [...document.scripts].filter(s => s.type !== 'application/json').length,
                images: document.images.length, links: document.links.length })""")
        finally:
            browser.close()
    assert dialogs == [] and fetched == []
    assert elements == {"scripts": 0, "images": 0, "links": 0}
    for name in HOSTILE_NAMES:
        assert name in shown
