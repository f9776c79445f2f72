#!/usr/bin/env python3
"""Opens an oomlab page in headless Chromium and reports what a person would see.

Standard library only: Chromium is driven over its DevTools protocol on a
pipe (`--remote-debugging-pipe`, file descriptors 3 and 4), so no driver
package is installed. The browser gets no network: every host resolves to
nothing and the proxy is a closed port, and every request the page makes is
recorded (an oomlab page makes none: the page's own file only).

    check_page.py PAGE.html [--screenshot OUT.png] [--hover N] [--width W] [--height H]

Prints one JSON object:
  ready          the page's script finished drawing (body[data-ready])
  errors         console errors, uncaught exceptions, error log entries
  requests       URLs requested other than the page itself (data: URLs are
                 inline, not counted)
  peaks          [{bytes, text, strategy}] of elements marked data-peak-bytes
  predictions    [{bytes, variant}] of data-prediction-bytes (a model page)
  timing         the page's own performance.now() figures (window.oomlabTiming)
  hover          for chart N (default 0): the readout after the mouse moved
                 over the middle of its plot: {text, t, bytes, x, y}
  screenshot     the PNG written (full page up to --height)

Exit 0 when the browser ran (whatever it found), 2 when the page is not a
file, 3 when the browser is missing (the message names where it looked).
"""

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def find_chromium():
    env = os.environ.get("OOMLAB_CHROMIUM")
    if env:
        return env if os.path.exists(env) else None
    for c in CHROMIUM_CANDIDATES:
        if os.path.exists(c):
            return c
    return shutil.which("chromium")


class Browser:
    """One headless Chromium, spoken to over the DevTools pipe."""

    def __init__(self, exe, width, height):
        self.profile = tempfile.mkdtemp(prefix="oomlab-chromium-")
        to_child_r, self.to_child_w = os.pipe()
        self.from_child_r, from_child_w = os.pipe()
        # Park the child's ends above 10 so dup2 onto 3 and 4 cannot clobber them.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)

        def wire():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            # No network: nothing resolves, and the proxy is a closed port.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--user-data-dir=" + self.profile,
            "--window-size=%d,%d" % (width, height),
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            preexec_fn=wire,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_child_r, from_child_w, hi_r, hi_w):
            os.close(fd)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_child_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def pump(self, seconds):
        """Collects events for a while (the page loading, a hover settling)."""
        deadline = time.time() + seconds
        os.set_blocking(self.from_child_r, False)
        try:
            while time.time() < deadline:
                try:
                    chunk = os.read(self.from_child_r, 1 << 20)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    self.buf += chunk
                    while b"\0" in self.buf:
                        msg, self.buf = self.buf.split(b"\0", 1)
                        self.events.append(json.loads(msg))
                else:
                    time.sleep(0.02)
        finally:
            os.set_blocking(self.from_child_r, True)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def evaluate(b, session, expr):
    r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True}, session)
    if "exceptionDetails" in r:
        raise RuntimeError("evaluating %s: %s" % (expr[:60], r["exceptionDetails"]))
    return r.get("result", {}).get("value")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--screenshot")
    ap.add_argument("--hover", type=int, default=0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1400)
    ap.add_argument("--full-page", action="store_true", help="screenshot the whole page, not only --height")
    a = ap.parse_args()

    if not os.path.isfile(a.page):
        print("%s: no such page" % a.page, file=sys.stderr)
        return 2
    exe = find_chromium()
    if not exe:
        print("chromium not found (looked for %s; set OOMLAB_CHROMIUM)" % ", ".join(CHROMIUM_CANDIDATES), file=sys.stderr)
        return 3
    url = "file://" + os.path.abspath(a.page)
    b = Browser(exe, a.width, a.height)
    out = {"chromium": exe, "page": url}
    try:
        targets = b.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = b.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            b.send(m, {}, session)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": a.width, "height": a.height, "deviceScaleFactor": 1, "mobile": False}, session)
        started = time.time()
        b.send("Page.navigate", {"url": url}, session)
        ready = False
        while time.time() - started < 20:
            b.pump(0.05)
            if evaluate(b, session, "document.readyState === 'complete' && document.body && document.body.getAttribute('data-ready') === '1'"):
                ready = True
                break
        out["load_wall_s"] = round(time.time() - started, 3)
        out["ready"] = ready
        out["timing"] = evaluate(b, session, "window.oomlabTiming || null")
        out["peaks"] = evaluate(b, session, """Array.from(document.querySelectorAll('[data-peak-bytes]')).map(e => (
            {bytes: Number(e.getAttribute('data-peak-bytes')), text: e.textContent, strategy: e.getAttribute('data-strategy')}))""")
        out["predictions"] = evaluate(b, session, """Array.from(document.querySelectorAll('[data-prediction-bytes]')).map(e => (
            {bytes: Number(e.getAttribute('data-prediction-bytes')), text: e.textContent, variant: e.getAttribute('data-variant')}))""")
        out["charts"] = evaluate(b, session, "document.querySelectorAll('.u-over').length")
        out["title"] = evaluate(b, session, "document.title")
        out["text"] = evaluate(b, session, "document.body.innerText")

        # Hover the middle of chart N, as a person's mouse would.
        hover = None
        if out["charts"] and a.hover < out["charts"]:
            rect = evaluate(b, session, """(() => {
                const o = document.querySelectorAll('.u-over')[%d];
                o.scrollIntoView({block: 'center'});
                const r = o.getBoundingClientRect();
                return {x: r.left, y: r.top, w: r.width, h: r.height};
            })()""" % a.hover)
            x = rect["x"] + rect["w"] * 0.5
            y = rect["y"] + rect["h"] * 0.5
            for dx in (-30, -10, 0):
                b.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + dx, "y": y}, session)
                b.pump(0.05)
            b.pump(0.3)
            hover = evaluate(b, session, """(() => {
                const o = document.querySelectorAll('.u-over')[%d];
                const c = o.closest('.chart') || o.closest('.uplot').parentElement;
                let ro = c.nextElementSibling;
                const legend = o.closest('.uplot').querySelector('.u-legend');
                const t = ro && ro.querySelector('.ro-time');
                const by = ro && ro.querySelector('.ro-bytes');
                return {
                    text: ro && ro.classList.contains('readout') ? ro.textContent : (legend ? legend.innerText : ''),
                    t: t ? Number(t.getAttribute('data-t')) : null,
                    bytes: by ? Number(by.getAttribute('data-bytes')) : null
                };
            })()""" % a.hover)
            hover["x"], hover["y"] = x, y
            evaluate(b, session, "window.scrollTo(0, 0)")
            b.pump(0.1)
        out["hover"] = hover

        if a.screenshot:
            params = {"format": "png"}
            if a.full_page:
                size = evaluate(b, session, "({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight})")
                params["clip"] = {"x": 0, "y": 0, "width": size["w"], "height": size["h"], "scale": 1}
                params["captureBeyondViewport"] = True
            shot = b.send("Page.captureScreenshot", params, session)
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            out["screenshot"] = os.path.abspath(a.screenshot)
        b.pump(0.1)
    finally:
        b.close()

    errors, requests = [], []
    for ev in b.events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console.%s: %s" % (p["type"], " ".join(str(x.get("value", x.get("description", ""))) for x in p.get("args", []))))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append("exception: %s %s" % (d.get("text", ""), d.get("exception", {}).get("description", "")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append("log: %s %s" % (p["entry"].get("text", ""), p["entry"].get("url", "")))
        elif m == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            # data: URLs are inline (no network); anything else is a fetch.
            if u != url and not u.startswith("data:"):
                requests.append(u)
    out["errors"] = errors
    out["requests"] = requests
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
