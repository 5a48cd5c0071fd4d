"""Open a report page (`infersim report`) in headless Chromium, offline, and save a full-page screenshot,
so a person can look at what the page shows. A dev check, not a dependency of infersim:

    pip install playwright            # and a Chromium: `python -m playwright install chromium`,
                                      # or the distribution's (apt-get install chromium)
    python scripts/report_screenshot.py report.html report.png

Any request the page makes for something outside its own file is blocked and reported (exit 1): the
page must work offline. Without playwright, the chromium binary's own --screenshot is used (window-sized,
no request check)."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1400


def system_chromium() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def with_playwright(page_url: str, out: Path) -> list[str]:
    """Full-page screenshot; returns the outside requests the page tried (each blocked)."""
    from playwright.sync_api import Error, sync_playwright
    outside = []
    with sync_playwright() as driver:
        try:
            browser = driver.chromium.launch()
        except Error:
            executable = system_chromium()
            if executable is None:
                raise
            browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})

        def route(request_route):
            if request_route.request.url.startswith(("file:", "data:", "about:")):
                request_route.continue_()
            else:
                outside.append(request_route.request.url)
                request_route.abort()
        page.route("**/*", route)
        page.goto(page_url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    return outside


def with_chromium_cli(page_url: str, out: Path, height: int) -> None:
    executable = system_chromium()
    if executable is None:
        sys.exit("report_screenshot: neither playwright nor a chromium binary is installed")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([executable, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                        f"--window-size={WIDTH},{height}", f"--screenshot={out}", page_url],
                       check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--height", type=int, default=4000, help="Window height without playwright (px).")
    args = parser.parse_args()
    if not args.report.is_file():
        sys.exit(f"report_screenshot: {args.report}: no such file")
    page_url = args.report.resolve().as_uri()
    try:
        import playwright  # noqa: F401
    except ImportError:
        with_chromium_cli(page_url, args.out, args.height)
        print(f"wrote {args.out} (chromium --screenshot; outside requests not checked)")
        return
    outside = with_playwright(page_url, args.out)
    print(f"wrote {args.out}")
    if outside:
        print("the page asked for outside resources (blocked): " + ", ".join(outside), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
