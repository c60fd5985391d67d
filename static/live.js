// wsgidev live reload: the browser side of LiveReloadMiddleware.
//
// The middleware adds this script (external, deferred, no inline code) to whole HTML pages. It
// - keeps one event stream open to the server: a new boot id in its "hello" means the server
//   restarted with new code (or into / out of an import-error page) and the page reloads; a
//   "reload" event (template or static file saved) reloads it too; a "css" event swaps the
//   saved stylesheet in place, so scroll position, form input and JS state stay;
// - reconnects under its own back-off (0.1 s doubling to 5 s) while the server is away or
//   cannot keep the stream open, at once after a stream that lasted, and
//   restores the scroll position after any reload it caused;
// - watches the page's fetch() and XMLHttpRequest responses (htmx uses XHR) without altering
//   them: an error carrying X-Wsgidev-Traceback shows the exception, the raising source lines
//   and a link to the full traceback in <wsgidev-overlay>, a shadow-DOM panel the app's CSS
//   cannot reach. The DOM is built with createElement/textContent only (Trusted Types safe)
//   and styled by a constructable stylesheet only (an app CSP without 'unsafe-inline' allows it).
// Settings come from the script tag's data-* attributes. Nothing is global except
// window.__wsgidevLive (the double-load guard) and the custom element.
(function () {
  "use strict";

  const VERSION = "1";
  // Only valid while this script runs for the first time: read it before anything async.
  const script = document.currentScript;
  if (window.__wsgidevLive || !script) return;
  const BOOT = script.getAttribute("data-wsgidev-boot") || "";
  const EVENTS_URL = script.getAttribute("data-wsgidev-events");
  const ERROR_URL = script.getAttribute("data-wsgidev-error");
  if (!EVENTS_URL || !ERROR_URL) return;
  window.__wsgidevLive = Object.freeze({ version: VERSION });

  const HEADER = "X-Wsgidev-Traceback";
  const MIN_DELAY = 100;
  const MAX_DELAY = 5000;
  const STREAM_LASTED = 2000;
  const MAX_ENTRIES = 20;
  const SCROLL_KEY = "wsgidev-live:scroll:" + location.pathname + location.search;
  const LOOP_KEY = "wsgidev-live:boot-reloads";
  // Everything the middleware serves lives beside the error URL; never report those requests.
  const OWN_PREFIX = new URL(ERROR_URL, location.href).href.replace(/[^/]*$/, "");

  // Runs ``action`` and swallows any exception: what this script observes or stores must
  // never break the page (sessionStorage, for one, throws when disabled or full).
  function quietly(action) {
    try {
      return action();
    } catch (err) {
      return null;
    }
  }

  const parse = (text) => quietly(() => JSON.parse(text));
  const storage = (use) => quietly(() => use(window.sessionStorage));

  // -- scroll position across reloads ------------------------------------------------------

  function saveScroll() {
    const position = JSON.stringify({ x: window.scrollX, y: window.scrollY });
    storage((s) => s.setItem(SCROLL_KEY, position));
  }

  function restoreScroll() {
    const saved = storage((s) => {
      const value = s.getItem(SCROLL_KEY);
      if (value !== null) s.removeItem(SCROLL_KEY);
      return value;
    });
    const position = saved === null ? null : parse(saved);
    if (!position || !Number.isFinite(position.x) || !Number.isFinite(position.y)) return;
    const { x, y } = position;
    window.scrollTo(x, y);
    if (document.readyState === "complete") return;
    const landed = [window.scrollX, window.scrollY];
    window.addEventListener(
      "load",
      () => {
        // Images may have made the page taller; go on only if nobody scrolled meanwhile.
        const unmoved = window.scrollX === landed[0] && window.scrollY === landed[1];
        if (unmoved && (window.scrollX !== x || window.scrollY !== y)) window.scrollTo(x, y);
      },
      { once: true }
    );
  }

  restoreScroll();

  // -- reloads -----------------------------------------------------------------------------

  let reloading = false;

  function reload(reason) {
    if (reloading) return;
    reloading = true;
    // An app's beforeunload prompt may cancel the reload: let a later event try again.
    setTimeout(() => {
      reloading = false;
    }, 3000);
    saveScroll();
    console.info("[wsgidev] reloading: " + reason);
    location.reload();
  }

  // A server whose processes each have their own boot id (a multi-process server that builds
  // the app in every worker) would make pages reload forever: stop after a burst.
  let bootReloadsOff = false;

  function mayReloadForBoot() {
    if (bootReloadsOff) return false;
    const now = Date.now();
    const stored = parse(storage((s) => s.getItem(LOOP_KEY)));
    const recent = (Array.isArray(stored) ? stored : []).filter((t) => now - t < 5000);
    if (recent.length >= 10) {
      bootReloadsOff = true;
      console.warn(
        "[wsgidev] the server answered with a new boot id " + recent.length + " times in 5 s " +
          "(several server processes?): this page no longer reloads when the server restarts"
      );
      return false;
    }
    recent.push(now);
    storage((s) => s.setItem(LOOP_KEY, JSON.stringify(recent)));
    return true;
  }

  // -- the event stream --------------------------------------------------------------------

  let source = null;
  let timer = 0;
  let delay = MIN_DELAY;
  let greeted = false;
  let stopped = false;

  function connect() {
    clearTimeout(timer);
    timer = 0;
    if (stopped || source) return;
    const stream = quietly(() => new EventSource(EVENTS_URL));
    if (!stream) return retryLater();
    source = stream;
    // Events of a stream this script has already closed are stale: ignore them.
    const on = (name, handle) =>
      stream.addEventListener(name, (event) => {
        if (source === stream) handle(event);
      });
    let greetedAt = 0;
    on("hello", (event) => {
      const data = parse(event.data);
      if (!data || typeof data.boot !== "string") return;
      greetedAt = Date.now();
      if (!greeted) {
        greeted = true;
        console.info("[wsgidev] live reload connected");
      }
      if (data.boot !== BOOT && mayReloadForBoot()) reload("the server restarted");
    });
    on("reload", (event) => {
      const data = parse(event.data);
      reload("changed " + ((data && data.path) || "a file"));
    });
    on("css", (event) => {
      const data = parse(event.data);
      if (data && typeof data.url === "string") quietly(() => swapStylesheets(data.url));
    });
    on("error", () => {
      // The browser would retry on its own schedule (or give up): use ours instead. A stream
      // that lasted (a server ending it every few seconds, a restart) is reconnected at once;
      // one that ends right after its hello (a server that cannot keep it) backs off like a
      // server that is away, so the tab polls slowly instead of hammering it.
      stream.close();
      source = null;
      if (greetedAt && Date.now() - greetedAt >= STREAM_LASTED) delay = MIN_DELAY;
      retryLater();
    });
  }

  function retryLater() {
    if (stopped || timer) return;
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, MAX_DELAY);
  }

  function disconnect() {
    stopped = true;
    clearTimeout(timer);
    timer = 0;
    if (source) source.close();
    source = null;
  }

  // A closed tab or a navigation frees the server's stream at once; the back-forward cache
  // brings the page back without running this script again.
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    stopped = false;
    delay = MIN_DELAY;
    connect();
  });

  // -- stylesheet swap ---------------------------------------------------------------------

  const replacing = new Map(); // a clone still loading -> the links it replaces once loaded
  const retiring = new WeakSet(); // links already being replaced

  // The server quotes more characters than the URL parser does: compare decoded paths.
  const decodedPath = (url) => quietly(() => decodeURIComponent(url.pathname)) || url.pathname;

  function swapStylesheets(path) {
    const asked = quietly(() => new URL(path, location.origin));
    if (!asked) return;
    const wanted = decodedPath(asked);
    const links = [];
    for (const link of document.querySelectorAll('link[rel~="stylesheet"][href]')) {
      const url = quietly(() => new URL(link.href));
      if (url && url.origin === location.origin && !retiring.has(link)) links.push([link, url]);
    }
    const exact = links.filter(([, url]) => decodedPath(url) === wanted);
    // Under a SCRIPT_NAME the page's URL has a prefix the server's path lacks.
    const suffix = links.filter(([, url]) => decodedPath(url).endsWith(wanted));
    // No match: the file may be @imported by another sheet; refresh them all.
    const chosen = exact.length ? exact : suffix.length ? suffix : links;
    for (const [link] of chosen) swap(link);
  }

  function stamped(href) {
    // Replace an earlier stamp, keep the other parameters exactly as written.
    const url = new URL(href);
    const kept = url.search
      .slice(1)
      .split("&")
      .filter((part) => part && part.split("=")[0] !== "wsgidev-live");
    kept.push("wsgidev-live=" + Date.now());
    url.search = "?" + kept.join("&");
    return url.href;
  }

  function swap(link) {
    const clone = link.cloneNode(false);
    // The file changed, so a Subresource Integrity hash written for it no longer matches.
    clone.removeAttribute("integrity");
    clone.href = stamped(link.href);
    const old = [link].concat(replacing.get(link) || []);
    replacing.delete(link);
    replacing.set(clone, old);
    old.forEach((item) => retiring.add(item));
    // The old sheet stays until the new one applies: no flash of unstyled content.
    const done = () => {
      const previous = replacing.get(clone);
      replacing.delete(clone);
      if (previous) previous.forEach((item) => item.remove());
    };
    clone.addEventListener("load", done, { once: true });
    clone.addEventListener("error", done, { once: true });
    // A disabled sheet never loads; anything else gets a late clean-up should no event come.
    setTimeout(done, clone.disabled ? 0 : 10000);
    link.after(clone);
  }

  // -- the error overlay -------------------------------------------------------------------

  const OVERLAY_CSS = `
:host {
  all: initial !important;
  display: block !important;
  position: fixed !important;
  inset: auto 0 0 0 !important;
  z-index: 2147483647 !important;
}
:host([hidden]) { display: none !important; }
@media print { :host { display: none !important; } }
.panel {
  box-sizing: border-box; max-height: 60vh; overflow: auto; overscroll-behavior: contain;
  background: #1d1f23; color: #e6e6e6; color-scheme: dark;
  border-top: 3px solid #e5534b; box-shadow: 0 -6px 24px rgba(0, 0, 0, 0.35);
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
.header {
  position: sticky; top: 0; display: flex; align-items: center;
  justify-content: space-between; gap: 1em; padding: 6px 8px 6px 14px;
  background: #272a30; border-bottom: 1px solid #383c43;
}
.title { font-weight: 600; }
.dismiss {
  all: unset; cursor: pointer; padding: 0 8px; border-radius: 4px;
  font: 22px/1.2 system-ui, sans-serif; color: #c9ccd1;
}
.dismiss:hover { background: #3b3f47; color: #fff; }
.dismiss:focus-visible { outline: 2px solid #79c0ff; }
.entry { padding: 10px 14px 12px; border-bottom: 1px solid #33363c; }
.type { font-weight: 700; color: #ff7b72; }
.message { white-space: pre-wrap; overflow-wrap: anywhere; }
.request, .where { margin-top: 2px; color: #9aa3ad; font-size: 12px; overflow-wrap: anywhere; }
.where .function, .where .file, .source {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
.where .function, .where .file { color: #c9d1d9; }
.source {
  margin: 8px 0 6px; padding: 6px 0; overflow-x: auto;
  background: #141619; border-radius: 4px; font-size: 12px; line-height: 1.5;
}
.lines { display: inline-block; min-width: 100%; }
.line { display: flex; white-space: pre; padding-right: 12px; }
.lineno {
  flex: none; min-width: 4ch; padding: 0 10px; text-align: right; color: #6b737d;
  user-select: none;
}
.line.current { background: rgba(229, 83, 75, 0.22); }
.line.current .lineno { color: #ffa198; box-shadow: inset 3px 0 #e5534b; }
a.full { color: #79c0ff; font-size: 12px; }
.more { padding: 8px 14px; color: #9aa3ad; font-size: 12px; }
.more[hidden] { display: none; }
`;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function httpLink(value) {
    // Only http(s) targets: a "javascript:" URL must never become a link.
    const url = quietly(() => new URL(String(value), location.href));
    return url && (url.protocol === "http:" || url.protocol === "https:") ? url.href : null;
  }

  class Overlay extends HTMLElement {
    constructor() {
      super();
      const shadow = this.attachShadow({ mode: "open" });
      // Not a <style> element: an app CSP without 'unsafe-inline' would block that.
      quietly(() => {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(OVERLAY_CSS);
        shadow.adoptedStyleSheets = [sheet];
      });
      this._items = []; // {seq, node}, newest first
      this._dropped = 0;
      const panel = el("div", "panel");
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-label", "wsgidev: errors in background requests");
      const header = el("div", "header");
      this._title = el("span", "title");
      this._title.setAttribute("aria-live", "polite");
      const close = el("button", "dismiss", "\u00d7");
      close.type = "button";
      close.title = "Dismiss (Esc)";
      close.setAttribute("aria-label", "Dismiss");
      close.addEventListener("click", () => this.dismiss());
      header.append(this._title, close);
      this._list = el("div", "entries");
      this._more = el("div", "more");
      this._more.hidden = true;
      panel.append(header, this._list, this._more);
      shadow.append(panel);
    }

    get shown() {
      return this.isConnected && !this.hidden;
    }

    // Summaries arrive in any order: ``seq`` (order of the responses) keeps newest first.
    add(node, seq) {
      let index = this._items.findIndex((item) => item.seq < seq);
      if (index < 0) index = this._items.length;
      if (index >= MAX_ENTRIES) {
        this._dropped += 1;
      } else {
        const next = this._items[index];
        this._list.insertBefore(node, next ? next.node : null);
        this._items.splice(index, 0, { seq, node });
        while (this._items.length > MAX_ENTRIES) {
          this._items.pop().node.remove();
          this._dropped += 1;
        }
      }
      const total = this._items.length + this._dropped;
      this._title.textContent =
        total === 1
          ? "1 error in a background request"
          : total + " errors in background requests";
      this._more.textContent = "and " + this._dropped + " more";
      this._more.hidden = this._dropped === 0;
      this.hidden = false;
      if (!this.isConnected) document.documentElement.appendChild(this);
    }

    dismiss() {
      this._items.forEach((item) => item.node.remove());
      this._items = [];
      this._dropped = 0;
      this._more.hidden = true;
      this.hidden = true;
    }
  }

  const TAG = "wsgidev-overlay";
  if (window.customElements && !customElements.get(TAG)) customElements.define(TAG, Overlay);
  let overlay = null;

  // Esc dismisses, only while shown; the app's own Escape handling is left alone.
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.isComposing && overlay && overlay.shown) {
      overlay.dismiss();
    }
  });

  function buildEntry(info) {
    const entry = el("div", "entry");
    const head = el("div", "head");
    head.append(el("span", "type", info.type));
    if (info.message) head.append(": ", el("span", "message", info.message));
    entry.append(head);
    if (info.method || info.url) {
      entry.append(el("div", "request", [info.method, info.url].filter(Boolean).join(" ")));
    }
    const frame = info.frame;
    if (frame && typeof frame === "object") {
      const where = el("div", "where");
      const file = String(frame.filename) + (frame.lineno ? ":" + frame.lineno : "");
      if (frame.function) where.append(el("span", "function", String(frame.function)), " at ");
      where.append(el("span", "file", file));
      entry.append(where);
      const lines = Array.isArray(frame.lines) ? frame.lines : [];
      if (lines.length) {
        const source = el("div", "source");
        const block = el("div", "lines");
        for (const line of lines) {
          if (!line || typeof line !== "object") continue;
          const current = line.lineno === frame.lineno;
          const row = el("div", current ? "line current" : "line");
          row.append(el("span", "lineno", String(line.lineno)));
          row.append(el("span", "text", String(line.text)));
          block.append(row);
        }
        source.append(block);
        entry.append(source);
      }
    }
    const href = info.link && httpLink(info.link);
    if (href) {
      const link = el("a", "full", "Open the full traceback");
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener";
      entry.append(link);
    }
    return entry;
  }

  function show(seq, info) {
    quietly(() => {
      if (!window.customElements || customElements.get(TAG) !== Overlay) return;
      if (!overlay) overlay = document.createElement(TAG);
      overlay.add(buildEntry(info), seq);
    });
  }

  // -- watching background requests --------------------------------------------------------

  const originalFetch = window.fetch;
  let sequence = 0;

  function inspect(status, header, method, url) {
    if (!(status >= 400) || !header) return;
    if (url && new URL(url, location.href).href.startsWith(OWN_PREFIX)) return;
    const token = new URL(header, location.href).searchParams.get("tb");
    if (!token) return;
    const seq = ++sequence;
    const known = { type: "Error " + status, message: "", method, url, frame: null, link: header };
    originalFetch
      .call(window, ERROR_URL + "?tb=" + encodeURIComponent(token), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
      .then((response) => (response.ok ? response.json() : null))
      .then(
        (data) => {
          if (!data || typeof data !== "object" || !data.type) return show(seq, known);
          const request = data.request && typeof data.request === "object" ? data.request : {};
          show(seq, {
            type: String(data.type),
            message: data.message == null ? "" : String(data.message),
            method: request.method ? String(request.method) : method,
            url: request.url ? String(request.url) : url,
            frame: data.frame,
            link: data.traceback_url || header,
          });
        },
        () => show(seq, known)
      );
  }

  if (typeof originalFetch === "function") {
    // The app gets the very promise the browser's fetch returned; a side branch looks at it.
    window.fetch = function fetch(input, init) {
      const result = originalFetch.apply(this, arguments);
      quietly(() => {
        let method = input instanceof Request ? input.method : "GET";
        if (init && init.method) method = String(init.method).toUpperCase();
        const asked = typeof input === "string" ? input : input instanceof URL ? input.href : "";
        const look = (response) =>
          quietly(() =>
            inspect(response.status, response.headers.get(HEADER), method, response.url || asked)
          );
        result.then(look, () => {}); // the app handles its own rejections
      });
      return result;
    };
  }

  const xhrRequests = new WeakMap();

  function onXhrEnd() {
    const xhr = this;
    quietly(() => {
      if (!(xhr.status >= 400)) return;
      // getAllResponseHeaders() lists only readable headers: unlike getResponseHeader() it
      // never logs "Refused to get unsafe header" for a cross-origin response.
      let header = null;
      for (const line of xhr.getAllResponseHeaders().split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === HEADER.toLowerCase()) {
          header = line.slice(colon + 1).trim();
        }
      }
      const asked = xhrRequests.get(xhr) || {};
      const method = asked.method ? String(asked.method).toUpperCase() : "GET";
      inspect(xhr.status, header, method, xhr.responseURL || String(asked.url || ""));
    });
  }

  if (window.XMLHttpRequest) {
    const proto = XMLHttpRequest.prototype;
    const originalOpen = proto.open;
    const originalSend = proto.send;
    proto.open = function open(method, url) {
      quietly(() => xhrRequests.set(this, { method, url }));
      return originalOpen.apply(this, arguments);
    };
    proto.send = function send() {
      // The same listener function is added once however often the request is sent.
      quietly(() => this.addEventListener("loadend", onXhrEnd));
      return originalSend.apply(this, arguments);
    };
  }

  connect();
})();
