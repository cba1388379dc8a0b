"""The Studio's weight and speed: the gzipped size of its initial JavaScript (the entry
script and what it preloads; target <= 400 kB, heavier parts load lazily), the time from
navigation to an interactive workflow list, and the time to render the run view of a
finished 500-step run, on loopback.

The server is `orchestrate serve` in its own process (mock model at 0 s) on a throwaway
embedded PostgreSQL; the browser is Debian's Chromium driven by Playwright. Times are
medians of a few navigations in one signed-in tab. Prints a table, then one JSON line.

    make ui && python bench/studio.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg import bench_database, create_user  # noqa: E402
from _workflows import chain  # noqa: E402
from api_latency import SECRET, _free_port, start_server, wait_ready  # noqa: E402

from orchestrate.api.studio import STUDIO_DIR  # noqa: E402
from orchestrate.cli.devauth import mint  # noqa: E402
from orchestrate.db.signin import create_code  # noqa: E402
from orchestrate.settings import Settings  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
TARGET_KB = 400
STEPS = 500
WORKFLOWS = 30  # in the list, so it has something to render
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def initial_assets(directory: Path) -> tuple[list[Path], list[Path]]:
    """The scripts and style sheets index.html loads before anything else (the entry
    module and its modulepreloads; lazily imported chunks are not among them)."""
    html = (directory / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]*type="module"[^>]*src="/([^"]+)"', html)
    scripts += re.findall(r'<link[^>]*rel="modulepreload"[^>]*href="/([^"]+)"', html)
    styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="/([^"]+)"', html)
    return [directory / s for s in dict.fromkeys(scripts)], [directory / s for s in dict.fromkeys(styles)]


def gzipped_kb(paths: list[Path]) -> float:
    return round(sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in paths) / 1024, 1)


def sizes(directory: Path) -> dict[str, Any]:
    scripts, styles = initial_assets(directory)
    if not scripts:
        raise SystemExit(f"{directory}/index.html loads no module script: is it a Vite build?")
    every = sorted((directory / "assets").glob("*.js"))
    return {
        "initial_js_gzip_kb": gzipped_kb(scripts),
        "initial_css_gzip_kb": gzipped_kb(styles),
        "initial_js_files": len(scripts),
        "all_js_gzip_kb": gzipped_kb(every),
        "all_js_files": len(every),
    }


def seed(url: str, token: str) -> str:
    """Workflows for the list, and one finished run of a chain of STEPS steps; its id."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        for i in range(WORKFLOWS):
            api.post("/v1/workflows", json={"source": f"name: Bench {i}\nsteps:\n  - {{id: a, prompt: 'hello {i}'}}\n"}).raise_for_status()
        long = api.post("/v1/workflows", json={"source": chain(STEPS)})
        long.raise_for_status()
        run = api.post(f"/v1/workflows/{long.json()['id']}/runs", json={}).json()
        after = 0
        for _ in range(600):
            page = api.get(f"/v1/runs/{run['id']}/events", params={"after": after, "wait": 10}).json()
            after = page["next_after"]
            if page["finished"]:
                break
        status = api.get(f"/v1/runs/{run['id']}").json()["status"]
        if status != "succeeded":
            raise SystemExit(f"the {STEPS}-step run ended {status}")
        return str(run["id"])


def timed(page: Any, url: str, ready: Any, repeat: int) -> float:
    """Median milliseconds from starting a navigation to ``ready(page)`` returning."""
    times = []
    for _ in range(repeat):
        page.goto("about:blank")
        started = time.perf_counter()
        page.goto(url)
        ready(page)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def browse(url: str, code: str, run_id: str, repeat: int) -> dict[str, float]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{url}/#/signin?code={code}")  # the token then lives in this tab
            expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()

            def listed(p: Any) -> None:  # a row to click, and the search box to type in
                p.get_by_role("list", name="Workflows").get_by_role("link").first.wait_for()
                expect(p.get_by_role("searchbox")).to_be_editable(timeout=60_000)

            def rendered(p: Any) -> None:  # the run's status and its steps on screen
                expect(p.locator(".run-head h1 .status")).to_contain_text("succeeded", timeout=60_000)
                p.get_by_role("list", name="Steps of this run").get_by_role("button").first.wait_for()

            return {
                "list_interactive_ms": timed(page, f"{url}/#/workflows", listed, repeat),
                "run_view_500_ms": timed(page, f"{url}/#/runs/{run_id}", rendered, repeat),
            }
        finally:
            browser.close()


async def measure(repeat: int) -> dict[str, Any]:
    figures = sizes(STUDIO_DIR)
    async with bench_database() as (conninfo, _proxied, _counter):
        user = create_user(conninfo)
        home = Path(tempfile.mkdtemp(prefix="orchestrate-bench-studio-"))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(conninfo, port, home)
        try:
            await wait_ready(url, proc, home / "serve.log")
            token = mint(Settings(supabase_jwt_secret=SECRET), user, f"{user}@bench.test")
            run_id = await asyncio.to_thread(seed, url, token)
            code = create_code(conninfo, user)
            figures.update(await asyncio.to_thread(browse, url, code, run_id, repeat))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="navigations per figure (the median is kept)")
    args = parser.parse_args()
    if not (STUDIO_DIR / "index.html").is_file():
        sys.exit(f"The Studio is not built ({STUDIO_DIR}/index.html is missing): run `make ui` first, then this benchmark.")
    if not CHROMIUM.is_file():
        sys.exit(f"Chromium not found at {CHROMIUM}: apt-get install -y --no-install-recommends chromium")
    figures = asyncio.run(measure(args.repeat))
    verdict = "within" if figures["initial_js_gzip_kb"] <= TARGET_KB else "OVER"
    print(f"{'figure':42} {'value':>10}")
    print(f"{'initial JavaScript, gzip -9':42} {figures['initial_js_gzip_kb']:>7} kB  ({verdict} the {TARGET_KB} kB target; {figures['initial_js_files']} files)")
    print(f"{'initial CSS, gzip -9':42} {figures['initial_css_gzip_kb']:>7} kB")
    print(f"{'all JavaScript incl. lazy chunks, gzip -9':42} {figures['all_js_gzip_kb']:>7} kB  ({figures['all_js_files']} files)")
    print(f"{'navigation -> interactive workflow list':42} {figures['list_interactive_ms']:>7} ms  (median of {args.repeat}, {WORKFLOWS} workflows)")
    print(f"{f'navigation -> run view of a {STEPS}-step run':42} {figures['run_view_500_ms']:>7} ms  (median of {args.repeat})")
    print(json.dumps({"benchmark": "studio", "target_initial_js_kb": TARGET_KB, **figures}))


if __name__ == "__main__":
    main()
