"""Per-page CPU, uplink and downlink of a room's browsers: the full mesh against Janus (the SFU), with and
without simulcast, side by side.

    .venv/bin/python bench/media.py [--participants 3,4] [--seconds 20] [--topologies mesh,sfu,sfu-single]
                                    [--repeat 3]

Topologies: ``mesh`` (browsers' full mesh), ``sfu`` (Janus, pages publishing three simulcast layers, as
shipped), ``sfu-single`` (Janus, the page's ``sendEncodings`` removed: one layer, as before simulcast).

For each topology and room size: a server in this process (embedded defaults; with Janus from Debian
started on free ports for the SFU runs, as the tests do), Debian's Chromium headless with its fake camera
and microphone, one page per participant (the mediator signs in, the parties open their join links), all
admitted. Once every page decodes every other's video, over ``--seconds``:

- CPU per page: the CPU time (user + system) of every Chromium process this benchmark started (they are
  all its descendants), divided by the pages and the window: cores per page;
- uplink per page: the bytes every open RTCPeerConnection of the page sent (getStats ``outbound-rtp``),
  over the window, in kbit/s, how many cameras the page sends (outbound video streams by media source)
  and in how many layers (outbound-rtp video entries);
- downlink per page: the bytes the page received (``inbound-rtp``), in kbit/s, and the widths of the
  frames it decodes;
- Janus's own CPU over the window (SFU runs), in cores.

Recording is off in these runs (see docs/performance.md). With ``--repeat`` each configuration runs that
many times and a last line per configuration gives the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import Browser, Page, async_playwright  # noqa: E402

from tests.conftest import Api, _serve, janus_settings, make_settings, walk_to_scheduled  # noqa: E402
from tests.support.janus import JanusServer  # noqa: E402
from tests.support.mailbox import Mailbox  # noqa: E402
from tests.support.walk import party_link  # noqa: E402
from tests.web.browser import CHROMIUM, FLAGS, admit, join_room, sign_in, wait_rising  # noqa: E402
from tests.web.test_room_sfu_browser import KEEP_CONNECTIONS  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")

UPLINK = """async () => {
  let bytes = 0, layers = 0, received = 0;
  const sources = new Set(), widths = [];
  for (const [index, pc] of (window.__connections || []).entries()) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp') {
        bytes += s.bytesSent || 0;
        if (s.kind === 'video') { layers += 1; sources.add(`${index}:${s.mediaSourceId}`); }
      }
      if (s.type === 'inbound-rtp') {
        received += s.bytesReceived || 0;
        if (s.kind === 'video' && s.frameWidth) widths.push(s.frameWidth);
      }
    });
  }
  return {bytes, videos: sources.size, layers, received, widths: widths.sort((a, b) => a - b)};
}"""

# The "sfu-single" runs: the page's camera without simulcast layers, as it was published before them.
NO_SIMULCAST = """(() => {
  const Original = window.RTCPeerConnection;
  if (!Original) return;
  const add = Original.prototype.addTransceiver;
  Original.prototype.addTransceiver = function (kind, init) {
    if (init && init.sendEncodings) { init = {...init}; delete init.sendEncodings; }
    return add.call(this, kind, init);
  };
})();"""


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        found.update(kids)
        stack.extend(kids)
    return found


def _cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


async def _page(browser: Browser, url: str, simulcast: bool = True) -> Page:
    context = await browser.new_context(viewport={"width": 1024, "height": 700}, locale="en")
    await context.add_init_script(KEEP_CONNECTIONS)
    if not simulcast:
        await context.add_init_script(NO_SIMULCAST)
    page = await context.new_page()
    await page.goto(url)
    return page


async def run(topology: str, participants: int, seconds: float, janus: JanusServer | None) -> dict:
    mailbox = await Mailbox().start()
    with tempfile.TemporaryDirectory() as tmp:
        extra = janus_settings(janus) if janus is not None else {}
        settings = make_settings(Path(tmp), login_attempts_per_minute=500, applications_per_minute=500,
                                 **mailbox.settings(), **extra)
        async for api in _serve(settings, mailbox):
            result = await _measure(api, topology, participants, seconds, mailbox, janus)
    await mailbox.stop()
    return result


async def _measure(api: Api, topology: str, participants: int, seconds: float, mailbox: Mailbox,
                   janus: JanusServer | None) -> dict:
    journey = await walk_to_scheduled(api)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    room_url = f"{api.base}/room?session={journey.session_id}&lang=en"
    simulcast = topology != "sfu-single"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            mediator = await _page(browser, room_url, simulcast)
            await sign_in(mediator, users[journey.mediator_id])
            await join_room(mediator)
            pages = {journey.mediator_id: mediator}
            parties = [journey.borrower_id, journey.lender_id][:participants - 2]
            bank = await _page(browser, room_url, simulcast)
            await sign_in(bank, users[journey.bank_id])
            await join_room(bank)
            pages[journey.bank_id] = bank
            for party in parties:
                link = await party_link(api.http, journey, party, mailbox)
                page = await _page(browser, f"{api.base}/room?lang=en#{link}", simulcast)
                await join_room(page)
                pages[party] = page
            await admit(mediator, *[pid for pid in pages if pid != journey.mediator_id])
            for pid, page in pages.items():
                await wait_rising(page, set(pages) - {pid})
            await asyncio.sleep(3.0)  # past the encoders' ramp-up
            chromium = _children(os.getpid()) - ({janus._proc.pid} | _children(janus._proc.pid)
                                                 if janus is not None and janus._proc is not None else set())
            janus_pids = {janus._proc.pid} if janus is not None and janus._proc is not None else set()
            before = {pid: await page.evaluate(UPLINK) for pid, page in pages.items()}
            cpu0, janus0, t0 = _cpu_seconds(chromium), _cpu_seconds(janus_pids), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, janus1, t1 = _cpu_seconds(chromium), _cpu_seconds(janus_pids), time.monotonic()
            after = {pid: await page.evaluate(UPLINK) for pid, page in pages.items()}
        finally:
            await browser.close()
    window = t1 - t0
    uplinks = [(after[p]["bytes"] - before[p]["bytes"]) * 8 / window / 1000 for p in pages]
    downlinks = [(after[p]["received"] - before[p]["received"]) * 8 / window / 1000 for p in pages]
    return {
        "topology": topology, "participants": participants, "seconds": round(window, 1),
        "cpu_per_page": round((cpu1 - cpu0) / window / len(pages), 3),
        "uplink_kbps_per_page": round(sum(uplinks) / len(uplinks)),
        "downlink_kbps_per_page": round(sum(downlinks) / len(downlinks)),
        "outbound_videos_per_page": sorted({after[p]["videos"] for p in pages}),
        "layers_per_page": sorted({after[p]["layers"] for p in pages}),
        "decoded_widths": sorted({w for p in pages for w in after[p]["widths"]}),
        "janus_cpu": round((janus1 - janus0) / window, 3) if janus is not None else None,
        "load_average": round(os.getloadavg()[0], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", default="3,4", help="room sizes, comma-separated (3 or 4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per run")
    parser.add_argument("--topologies", default="mesh,sfu", help="of mesh, sfu, sfu-single; comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration; then the medians")
    args = parser.parse_args()
    sizes = [int(n) for n in args.participants.split(",")]
    topologies = args.topologies.split(",")
    if set(topologies) - {"mesh", "sfu", "sfu-single"}:
        parser.error("--topologies: mesh, sfu, sfu-single")
    janus = JanusServer().start()
    try:
        for size in sizes:
            for topology in topologies:
                results = []
                for _ in range(args.repeat):
                    result = await run(topology, size, args.seconds, None if topology == "mesh" else janus)
                    print(result, flush=True)
                    results.append(result)
                if args.repeat > 1:
                    print({"topology": topology, "participants": size, "runs": len(results), **{
                        f"median_{key}": statistics.median(r[key] for r in results)
                        for key in ("uplink_kbps_per_page", "downlink_kbps_per_page", "cpu_per_page",
                                    "load_average")}}, flush=True)
    finally:
        janus.stop()


if __name__ == "__main__":
    asyncio.run(main())
