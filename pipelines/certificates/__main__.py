"""python -m pipelines.certificates hash|issue|verify — service record certificates.

    echo "$NUMBER" | python -m pipelines.certificates hash            # the id_hash (for the Dagster job)
    echo "$NUMBER" | python -m pipelines.certificates issue --pdf     # or: issue --id-hash HASH
    python -m pipelines.certificates verify data/certificates/GZZYFW-....html

A certificate number is read from standard input (typed without echo at a terminal), never
from the command line (a shell's history and the process list would keep it), hashed at
once, and never printed. Exit status of verify: 0 authentic and matching the warehouse, 1 not
authentic (changed, or not issued here), 2 authentic but the warehouse's record now differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from pathlib import Path

from pipelines.certificates import issue, verify_page
from pipelines.certificates.certificate import UnreadableCertificate
from pipelines.certificates.record import CertificateError, lookup_hash
from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.normalize.ids import CERT_TYPES


def _read_number() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("certificate number (not shown): ")
    return sys.stdin.readline().strip()


def _page_text(path: Path) -> str:
    """The text of the certificate page a clerk names. A missing file, a folder or a file
    that is not text (the certificate's PDF, a scan) is said plainly, never by its name: a
    clerk may have named the file after the volunteer."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnreadableCertificate(
            "找不到该文件 / no such file: give the certificate's .html file "
            "(DATA_DIR/certificates/<serial>.html)") from None
    except UnicodeDecodeError:
        # a PDF is the printout of the page: its code and contents live in the .html file
        raise UnreadableCertificate(
            "不是证明的 HTML 文件 / not a certificate page: verify takes the certificate's .html "
            "file; a PDF is its printout: verify the .html of the same serial "
            "(DATA_DIR/certificates/<serial>.html)") from None
    except OSError as error:
        raise UnreadableCertificate(f"无法读取该文件 / the file cannot be read ({type(error).__name__})") from None


def _id_hash(args, settings: Settings, today: dt.date) -> str | None:
    if getattr(args, "id_hash", None):
        return args.id_hash
    if getattr(args, "account", None):
        return None  # the volunteer is named by a source account: no number to read
    return lookup_hash(args.type, _read_number(), settings.pii_hash_key, today=today)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.certificates", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    hashing = commands.add_parser("hash", help="print the id_hash of a certificate number read from stdin")
    issuing = commands.add_parser("issue", help="issue a volunteer's service record certificate")
    for sub in (hashing, issuing):
        sub.add_argument("--type", default="resident_id", choices=CERT_TYPES, help="certificate type")
    issuing.add_argument("--id-hash", help="the person's id_hash (else the number is read from stdin)")
    issuing.add_argument("--account", help="national:<volunteer number> or provincial:<account id>, for a "
                         "volunteer whose ID number the sources hold masked or not at all")
    issuing.add_argument("--issuer", help="org_key of the issuing organization (default: most hours served with)")
    issuing.add_argument("--date", type=dt.date.fromisoformat, help="issue date, YYYY-MM-DD (default: today, Beijing)")
    issuing.add_argument("--pdf", action="store_true", help="also print a PDF with headless Chromium")
    issuing.add_argument("--out", type=Path, help="folder (default: DATA_DIR/certificates)")
    issuing.add_argument("--schema", help="warehouse schema (default: the target's default)")
    verifying = commands.add_parser("verify", help="verify a certificate page's code, text and figures")
    verifying.add_argument("page", type=Path, help="the certificate's HTML file")
    verifying.add_argument("--no-warehouse", action="store_true", help="check code and text only")
    verifying.add_argument("--schema", help="warehouse schema (default: the target's default)")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    today = AsOf.now().date
    try:
        if args.command == "hash":
            print(_id_hash(args, settings, today))
            return 0
        if args.command == "issue":
            issued = issue(
                settings, id_hash=_id_hash(args, settings, today), account=args.account,
                issued_on=args.date or today, today=today,
                cert_type=args.type, issuer_org_key=args.issuer, schema=args.schema, pdf=args.pdf,
                out_dir=args.out,
            )
            print(f"serial: {issued.certificate.serial}")
            print(f"verification code: {issued.certificate.code}")
            print(f"html: {issued.html_path}")
            if issued.pdf_path:
                print(f"pdf: {issued.pdf_path}")
            for warning in issued.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            return 0
        result = verify_page(settings, _page_text(args.page), schema=args.schema,
                             against_warehouse=not args.no_warehouse)
    except (CertificateError, UnreadableCertificate) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not result.authentic:
        print("NOT AUTHENTIC / 证明无效: " + "；".join(result.problems))
        return 1
    if result.warehouse_matches is False:
        print("AUTHENTIC, BUT CHANGED SINCE / 证明真实，但与数据仓库现有记录不一致: " + "；".join(result.problems))
        return 2
    print("AUTHENTIC / 证明真实有效" + ("" if result.warehouse_matches else "（未核对数据仓库）"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
