"""Screenshot a Prefect UI page of one flow run with headless Chromium.

    python docs/screenshot.py --api http://127.0.0.1:4200/api --flow-run latest --out docs/prefect-flow-run.png
    python docs/screenshot.py --api URL --flow-run latest --artifact sleep-summary --size 1400,1420 \
        --out docs/prefect-sleep-summary.png

Needs a Chromium binary (`apt-get install chromium`; playwright's browser download is not needed).
The UI is a single-page app: --budget gives it virtual time to load and draw before the capture.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MIN_COLOURS = 50  # a blank or still-loading page has a handful of colours; a drawn run page has hundreds


def find_browser() -> str:
    """The first Chromium-family binary on PATH."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(f"screenshot: none of {', '.join(BROWSERS)} is on PATH; install one "
                     "(Debian/Ubuntu: apt-get install -y chromium)")


def _first_id(api: str, what: str, body: dict, missing: str) -> str:
    """The id of the first object `POST {api}/{what}/filter` returns for body; exit saying `missing` if none."""
    req = urllib.request.Request(f"{api}/{what}/filter", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        found = json.loads(r.read())
    if not found:
        raise SystemExit(f"screenshot: {missing}")
    return found[0]["id"]


def latest_flow_run(api: str, flow_name: str) -> str:
    """The id of the newest run of flow_name on the server at api."""
    body = {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC", "limit": 1}
    return _first_id(api, "flow_runs", body, f"no runs of flow '{flow_name}' on {api}")


def check_flow_run(api: str, flow_run_id: str) -> str:
    """The run's name; exit with the reason if the server does not know the id (the UI would show a 404 page)."""
    try:
        with urllib.request.urlopen(f"{api}/flow_runs/{flow_run_id}", timeout=30) as r:
            return json.loads(r.read())["name"]
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"screenshot: {api} does not know flow run {flow_run_id} (HTTP {exc.code})") from None


def run_artifact(api: str, flow_run_id: str, key: str) -> str:
    """The id of the artifact with this key that the flow run published."""
    return _first_id(api, "artifacts", {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}}},
                     f"flow run {flow_run_id} on {api} has no artifact with key '{key}'")


def distinct_colours(png: Path) -> int:
    """How many colours the image has (capped at 10,000), to tell a drawn page from a blank one."""
    from PIL import Image

    with Image.open(png) as im:
        colours = im.convert("RGB").getcolors(maxcolors=10_000)
    return 10_000 if colours is None else len(colours)


def screenshot(url: str, out: Path, size: str = "1400,1000", budget_ms: int = 30_000, timeout: float = 180) -> Path:
    """Capture url into out (PNG) with headless Chromium; raise if it failed or the page looks blank."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [find_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={size}", f"--virtual-time-budget={budget_ms}",
               f"--screenshot={out}", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"screenshot: chromium exited with {done.returncode} and wrote no {out}; "
                         f"stderr ends:\n{done.stderr[-2000:]}")
    colours = distinct_colours(out)
    if colours < MIN_COLOURS:
        raise SystemExit(f"screenshot: {out} has only {colours} colours: the page looks blank or still loading; "
                         f"retry with a larger --budget (now {budget_ms} ms)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--api", required=True, help="the server's API URL, e.g. http://127.0.0.1:4200/api")
    p.add_argument("--flow-run", default="latest", help="flow run id, or 'latest' (newest run of --flow)")
    p.add_argument("--flow", default="sleep-cycle", help="flow whose newest run 'latest' means")
    p.add_argument("--artifact", metavar="KEY", help="capture the run's artifact with this key instead of the run page")
    p.add_argument("--out", type=Path, default=Path("docs/prefect-flow-run.png"))
    p.add_argument("--size", default="1400,1000", help="window size WIDTH,HEIGHT in pixels")
    # 15 s sometimes captured the run graph's time axis half drawn; 30 s did not.
    p.add_argument("--budget", type=int, default=30_000, help="virtual time (ms) the page gets before the capture")
    args = p.parse_args(argv)
    api = args.api.rstrip("/")
    ui = api.removesuffix("/api")
    try:
        run_id = latest_flow_run(api, args.flow) if args.flow_run == "latest" else args.flow_run
        name = check_flow_run(api, run_id)
        url = (f"{ui}/artifacts/artifact/{run_artifact(api, run_id, args.artifact)}" if args.artifact
               else f"{ui}/runs/flow-run/{run_id}")
    except urllib.error.URLError as exc:
        raise SystemExit(f"screenshot: cannot reach the Prefect API at {api} ({exc.reason}); is the server running?")
    out = screenshot(url, args.out, size=args.size, budget_ms=args.budget)
    print(f"{out}: {name} ({url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
