"""Render the README's screenshots into docs/img/ (`make screenshots`): a lakehouse built from generated data,
its report and the SQL box of `stedi serve`, photographed by headless Chromium.

    .venv/bin/python scripts/screenshots.py [--scale 0.2] [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

# (file, CSS selector of the part of the page shown)
SHOTS = [("report-lineage.png", "#lineage"), ("report-funnel.png", "#funnel"), ("report-quality.png", "#quality"),
         ("report-data.png", "#data"), ("serve-sql.png", "#sql")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("screenshots: headless Chromium is needed (`make setup-dev` installs Debian's chromium)")
    os.environ.setdefault("STEDI_PSEUDONYM_KEY", "screenshots-only-key-0123456789abcdef")
    from playwright.sync_api import sync_playwright

    from stedi import Lakehouse
    from stedi.generate import generate
    from stedi.serve.server import ReportServer

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stedi-shots-") as work:
        generate(Path(work) / "data", scale=args.scale, seed=0)
        lake = Lakehouse(Path(work) / "lake")
        lake.ingest(Path(work) / "data")
        lake.run()
        server = ReportServer(lake, port=0)
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
                page.goto(server.url)
                page.add_style_tag(content="nav { position: static !important; }")  # not over each picture's top
                page.click("#sql-run")
                page.wait_for_selector("#sql-result table")
                for name, selector in SHOTS:
                    part = page.locator(selector).first
                    if part.count() == 0:
                        print(f"screenshots: no {selector} in the page; {name} skipped", file=sys.stderr)
                        continue
                    part.screenshot(path=str(args.out / name))
                    print(f"wrote {args.out / name}")
                browser.close()
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
