// wsgidev console: a Python prompt per traceback frame and on the standalone console page.
// Settings come from data-* attributes (the page's CSP forbids inline script). Code, the secret
// and the PIN travel in POST bodies only.
(function () {
  "use strict";

  const body = document.body;
  if (!body || body.dataset.evalex !== "true") {
    return;
  }
  // Empty when the page was served for a Host or client the console refuses: the first
  // command then comes back with the server's explanation (and how to trust the host).
  const SECRET = body.dataset.secret || "";
  const MULTIPROCESS = body.dataset.multiprocess === "true";
  // This page's own URL with the debugger's query: never pathname + "?...", because a path
  // such as "//attacker.example/x" would make that a URL on another host.
  const ENDPOINT = (() => {
    const url = new URL(window.location.href);
    url.search = "?__debugger__=yes";
    url.hash = "";
    return url.href;
  })();
  const HISTORY_KEY = "wsgidev.console.history";
  const HISTORY_MAX = 500;
  const RUNNING_NOTICE_MS = 1000;
  // Typed alone, these would be read as the debugger's own commands; a trailing space keeps
  // them Python (the interpreter ignores it).
  const RESERVED = new Set(["pinauth", "printpin", "complete", "resource"]);
  const MESSAGES = {
    network: "The server did not answer. It may have stopped or restarted; reload the page.",
    multiprocess:
      "The console is unavailable under a multi-process server: the next request may reach " +
      "another process, which does not have this traceback.",
  };

  // -- talking to the server -------------------------------------------------------------

  // The proof of the PIN. It lives in localStorage, which is per scheme, host *and port*, and
  // travels in the POST body: a cookie would also reach every other port of this host.
  const TOKEN_KEY = "wsgidev.console.token";
  const token = {
    get() {
      try {
        return window.localStorage.getItem(TOKEN_KEY) || "";
      } catch (err) {
        return this.memory || "";
      }
    },
    set(value) {
      this.memory = value;
      try {
        window.localStorage.setItem(TOKEN_KEY, value);
      } catch (err) {
        // Storage disabled: the token then lasts for this page only.
      }
    },
    memory: "",
  };

  async function post(fields) {
    const form = new URLSearchParams(fields);
    form.set("s", SECRET);
    const proof = token.get();
    if (proof) form.set("token", proof);
    let response;
    try {
      response = await fetch(ENDPOINT, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (err) {
      return { error: MESSAGES.network, reason: "network" };
    }
    try {
      const data = await response.json();
      data.status = response.status;
      return data;
    } catch (err) {
      return { error: MESSAGES.network + " (HTTP " + response.status + ")", reason: "network" };
    }
  }

  // -- history, shared by every console and kept across pages -----------------------------

  const history = {
    load() {
      try {
        const items = JSON.parse(window.localStorage.getItem(HISTORY_KEY) || "[]");
        return Array.isArray(items) ? items.filter((x) => typeof x === "string") : [];
      } catch (err) {
        return [];
      }
    },
    add(line) {
      if (!line.trim()) return;
      const items = this.load();
      if (items[items.length - 1] !== line) items.push(line);
      try {
        window.localStorage.setItem(HISTORY_KEY, JSON.stringify(items.slice(-HISTORY_MAX)));
      } catch (err) {
        // Storage full or disabled: history then lasts for this page only.
      }
    },
  };

  // -- the PIN, asked once per page before the first command -------------------------------

  let authPromise = null;
  let pinForms = [];

  function ensureAuth(consoleView) {
    if (!authPromise) {
      authPromise = post({ cmd: "pinauth" }).then((state) => {
        if (state.error) {
          authPromise = null;
          throw state;
        }
        if (state.locked) {
          authPromise = null;
          throw { error: lockedMessage(), reason: "locked" };
        }
        if (!state.pin_required || state.auth) return true;
        return askForPin(consoleView);
      });
    }
    return authPromise;
  }

  function lockedMessage() {
    return "The debugger is locked after too many wrong PINs. Restart the server to unlock it.";
  }

  function askForPin(consoleView) {
    return new Promise((resolve, reject) => {
      const form = el("form", "console-pin");
      const label = el("label", "console-pin-label");
      label.append(
        "This console runs code on the server. Enter the debugger PIN printed in the terminal " +
          "where the server was started: "
      );
      const input = el("input", "console-pin-input");
      input.type = "password";
      input.autocomplete = "off";
      input.inputMode = "numeric";
      input.placeholder = "123-456-789";
      input.setAttribute("aria-label", "Debugger PIN");
      label.append(input);
      const submit = el("button", "console-pin-submit", "Confirm PIN");
      submit.type = "submit";
      const reprint = el("button", "console-pin-print link", "Print the PIN again in the terminal");
      reprint.type = "button";
      const status = el("p", "console-pin-status");
      status.setAttribute("role", "status");
      form.append(label, submit, reprint, status);
      consoleView.root.insertBefore(form, consoleView.line);
      consoleView.line.hidden = true;
      pinForms.push({ form, consoleView });
      input.focus();

      reprint.addEventListener("click", async () => {
        const answer = await post({ cmd: "printpin" });
        status.textContent = answer.error || "The PIN was printed in the server's terminal.";
      });
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        submit.disabled = true;
        const answer = await post({ cmd: "pinauth", pin: input.value });
        submit.disabled = false;
        if (answer.auth) {
          if (typeof answer.token === "string") token.set(answer.token);
          for (const item of pinForms) {
            item.form.remove();
            item.consoleView.line.hidden = false;
          }
          pinForms = [];
          consoleView.input.focus();
          resolve(true);
          return;
        }
        if (answer.locked) {
          status.textContent = lockedMessage();
          input.disabled = true;
          submit.disabled = true;
          authPromise = null;
          reject({ error: lockedMessage(), reason: "locked" });
          return;
        }
        status.textContent = answer.error || "Wrong PIN.";
        input.select();
      });
    });
  }

  // -- small DOM helpers -------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function commonPrefix(words) {
    if (!words.length) return "";
    let prefix = words[0];
    for (const word of words.slice(1)) {
      let i = 0;
      while (i < prefix.length && i < word.length && prefix[i] === word[i]) i++;
      prefix = prefix.slice(0, i);
    }
    return prefix;
  }

  // -- one console ---------------------------------------------------------------------------

  class ConsoleView {
    constructor(host, frameId) {
      this.frameId = frameId;
      this.root = el("div", "wsgidev-console");
      this.output = el("div", "console-output");
      this.output.setAttribute("aria-live", "polite");
      this.line = el("div", "console-line");
      this.prompt = el("span", "console-prompt", ">>> ");
      this.input = el("input", "console-input");
      this.input.type = "text";
      this.input.autocomplete = "off";
      this.input.spellcheck = false;
      this.input.setAttribute("autocapitalize", "off");
      this.input.setAttribute("aria-label", "Python input");
      this.completions = el("ul", "console-completions");
      this.completions.hidden = true;
      this.line.append(this.prompt, this.input);
      this.root.append(this.output, this.line, this.completions);
      host.append(this.root);
      this.history = history.load();
      this.historyIndex = this.history.length;
      this.draft = "";
      this.busy = false;
      this.input.addEventListener("keydown", (event) => this.onKey(event));
      this.input.addEventListener("paste", (event) => this.onPaste(event));
      this.completions.addEventListener("click", (event) => {
        const item = event.target.closest("[data-match]");
        if (item) this.applyCompletion(Number(item.dataset.start), item.dataset.match);
      });
      this.output.addEventListener("click", (event) => {
        const button = event.target.closest(".show-more");
        if (!button) return;
        const rest = button.parentElement.querySelector(".repr-rest");
        if (rest) rest.hidden = false;
        button.remove();
      });
    }

    start() {
      if (MULTIPROCESS) {
        this.showError({ error: MESSAGES.multiprocess, reason: "multiprocess" });
        return;
      }
      ensureAuth(this).then(
        () => {
          if (this.frameId !== null && !this.output.childElementCount) this.intro();
          this.input.focus();
        },
        (state) => this.showError(state)
      );
    }

    intro() {
      const note = el("div", "console-intro");
      note.append(
        "Python in this frame, with the request's environ. dump() lists the variables, " +
          "help(obj) documents, Tab completes, \u2191/\u2193 recall, Ctrl+C cancels a line."
      );
      this.output.append(note);
    }

    echo(text) {
      text.split("\n").forEach((part, index) => {
        const line = el("div", "console-echo");
        const prompt = index === 0 ? this.prompt.textContent : "... ";
        line.append(el("span", "console-prompt", prompt), part);
        this.output.append(line);
      });
    }

    onPaste(event) {
      // A text input would flatten pasted lines into one; send a multi-line paste as a block.
      const text = (event.clipboardData || window.clipboardData)?.getData("text") ?? "";
      if (!text.includes("\n")) return;
      event.preventDefault();
      const start = this.input.selectionStart ?? this.input.value.length;
      const end = this.input.selectionEnd ?? start;
      const value = this.input.value;
      const pasted = text.replace(/\r\n?/g, "\n").replace(/\n+$/, "");
      // An <input> cannot hold newlines, so the block goes straight to submit().
      this.submit(value.slice(0, start) + pasted + value.slice(end));
    }

    appendHTML(html) {
      if (!html) return;
      // The server escaped every value; what comes back is markup it built.
      const block = el("div", "console-result");
      block.innerHTML = html;
      this.output.append(block);
      this.scroll();
    }

    showError(state) {
      const message = el("div", "console-error");
      message.setAttribute("role", "alert");
      message.dataset.reason = state.reason || "";
      message.append(state.error || "The command failed.");
      if (["expired", "restarted", "secret", "network"].includes(state.reason)) {
        const reload = el("button", "console-reload", "Reload the page");
        reload.type = "button";
        reload.addEventListener("click", () => window.location.reload());
        message.append(" ", reload);
      }
      // Nothing typed here could work until the page is reloaded (or the server restarted).
      const final = ["multiprocess", "locked", "expired", "restarted", "secret", "host", "client"];
      if (final.includes(state.reason)) {
        this.line.hidden = true;
      }
      this.output.append(message);
      this.scroll();
    }

    scroll() {
      this.output.scrollTop = this.output.scrollHeight;
    }

    fields(extra) {
      const fields = Object.assign({}, extra);
      if (this.frameId !== null) fields.frm = this.frameId;
      return fields;
    }

    async submit(text) {
      if (this.busy) return;
      const source = text === undefined ? this.input.value : text;
      this.hideCompletions();
      this.echo(source);
      for (const line of source.split("\n")) history.add(line);
      this.history = history.load();
      this.historyIndex = this.history.length;
      this.draft = "";
      this.input.value = "";
      try {
        await ensureAuth(this);
      } catch (state) {
        this.showError(state);
        return;
      }
      this.busy = true;
      this.root.classList.add("busy");
      // A command that takes a while says so, and how to stop it.
      const running = setTimeout(() => {
        this.status = el(
          "p",
          "console-running",
          "Still running… press Ctrl+C in the console to stop it."
        );
        this.status.setAttribute("role", "status");
        this.root.insertBefore(this.status, this.line);
      }, RUNNING_NOTICE_MS);
      const code = RESERVED.has(source.trim()) ? source + " " : source;
      const answer = await post(this.fields({ cmd: code }));
      clearTimeout(running);
      if (this.status) {
        this.status.remove();
        this.status = null;
      }
      this.busy = false;
      this.root.classList.remove("busy");
      if (answer.error) {
        if (answer.reason === "pin") authPromise = null;
        this.showError(answer);
        return;
      }
      this.appendHTML(answer.html);
      this.prompt.textContent = answer.prompt || ">>> ";
      if (answer.more) {
        // Continue the block at the same depth, one level deeper after a colon.
        const last = source.split("\n").pop();
        const indent = (last.match(/^\s*/) || [""])[0];
        this.input.value = last.trimEnd().endsWith(":") ? indent + "    " : indent;
      }
      this.input.focus();
      this.scroll();
    }

    onKey(event) {
      if (event.key === "Enter") {
        event.preventDefault();
        this.submit();
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        this.browseHistory(-1);
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        this.browseHistory(1);
      } else if (event.key === "Tab" && !event.shiftKey) {
        event.preventDefault();
        this.complete();
      } else if (event.key === "Escape") {
        this.hideCompletions();
      } else if (event.key === "c" && event.ctrlKey && this.input.selectionStart === this.input.selectionEnd) {
        // Ctrl+C without a selection: abandon the line (and a pending block), as the REPL does.
        event.preventDefault();
        this.interrupt();
      } else if (event.key === "l" && event.ctrlKey) {
        event.preventDefault();
        this.output.replaceChildren();
      }
    }

    async interrupt() {
      if (this.busy) {
        // Stop the command that is running; its own answer then ends with KeyboardInterrupt.
        const answer = await post(this.fields({ cmd: "", interrupt: "1" }));
        if (answer.error) this.showError(answer);
        return;
      }
      this.hideCompletions();
      this.echo(this.input.value + "^C");
      this.input.value = "";
      const answer = await post(this.fields({ cmd: "", interrupt: "1" }));
      if (answer.error) {
        this.showError(answer);
        return;
      }
      this.appendHTML(answer.html);
      this.prompt.textContent = answer.prompt || ">>> ";
    }

    browseHistory(step) {
      if (!this.history.length) return;
      if (this.historyIndex === this.history.length) this.draft = this.input.value;
      const next = Math.min(Math.max(this.historyIndex + step, 0), this.history.length);
      if (next === this.historyIndex) return;
      this.historyIndex = next;
      this.input.value = next === this.history.length ? this.draft : this.history[next];
      const end = this.input.value.length;
      this.input.setSelectionRange(end, end);
    }

    async complete() {
      const cursor = this.input.selectionStart ?? this.input.value.length;
      const before = this.input.value.slice(0, cursor);
      if (!before.trim() || /\s$/.test(before)) {
        this.insertAt(cursor, cursor, "    ");
        return;
      }
      try {
        await ensureAuth(this);
      } catch (state) {
        this.showError(state);
        return;
      }
      const answer = await post(this.fields({ cmd: "complete", text: before }));
      if (answer.error) {
        this.showError(answer);
        return;
      }
      const matches = answer.matches || [];
      if (matches.length === 1) {
        this.hideCompletions();
        this.applyCompletion(answer.start, matches[0]);
        return;
      }
      const shared = commonPrefix(matches);
      if (shared.length > before.length - answer.start) this.applyCompletion(answer.start, shared);
      this.showCompletions(answer.start, matches);
    }

    applyCompletion(start, text) {
      const cursor = this.input.selectionStart ?? this.input.value.length;
      this.insertAt(start, cursor, text);
      this.input.focus();
    }

    insertAt(start, end, text) {
      const value = this.input.value;
      this.input.value = value.slice(0, start) + text + value.slice(end);
      const caret = start + text.length;
      this.input.setSelectionRange(caret, caret);
    }

    showCompletions(start, matches) {
      this.completions.replaceChildren();
      if (!matches.length) {
        this.hideCompletions();
        return;
      }
      for (const match of matches) {
        const item = el("li", "console-completion");
        const button = el("button", "", match);
        button.type = "button";
        button.dataset.match = match;
        button.dataset.start = String(start);
        item.append(button);
        this.completions.append(item);
      }
      this.completions.hidden = false;
    }

    hideCompletions() {
      this.completions.hidden = true;
      this.completions.replaceChildren();
    }
  }

  // -- wiring: the standalone page, and a button on every frame of the traceback page ---------

  function openStandalone(host) {
    const view = new ConsoleView(host, null);
    view.start();
  }

  function addFrameButton(frame) {
    const frameId = frame.dataset.frameId;
    if (!frameId || frame.querySelector(":scope > .console-toggle")) return;
    const button = el("button", "console-toggle", ">_ console");
    button.type = "button";
    button.title = "Open a Python console in this frame";
    button.setAttribute("aria-expanded", "false");
    let host = null;
    button.addEventListener("click", (event) => {
      event.preventDefault();
      event.stopPropagation();
      if (!host) {
        host = el("div", "console-host");
        host.dataset.console = "frame";
        frame.append(host);
        new ConsoleView(host, frameId).start();
      } else {
        host.hidden = !host.hidden;
      }
      button.setAttribute("aria-expanded", String(!host.hidden));
      if (!host.hidden) {
        const input = host.querySelector(".console-input");
        if (input && !input.closest("[hidden]")) input.focus();
      }
    });
    const anchor = frame.querySelector("[data-console-anchor]") || frame.querySelector(".frame-head");
    if (anchor) anchor.append(button);
    else frame.prepend(button);
  }

  function init() {
    for (const host of document.querySelectorAll('[data-console="standalone"]')) openStandalone(host);
    for (const frame of document.querySelectorAll("[data-frame-id]")) addFrameButton(frame);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
