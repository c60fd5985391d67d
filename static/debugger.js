// wsgidev traceback page: fold library frames and locals, expand a frame's source, copy the
// plain-text traceback. Without this script every section is shown expanded.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function collapseByDefault() {
    for (const section of document.querySelectorAll("details[data-collapse]")) {
      section.open = false;
    }
    for (const button of document.querySelectorAll("button.expand, button.copy")) {
      button.hidden = false;
    }
  }

  function revealTarget() {
    // A link to #frame-N must not land inside a folded group.
    const id = decodeURIComponent(window.location.hash.slice(1));
    const target = id && document.getElementById(id);
    if (!target) return;
    for (let node = target.parentElement; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    target.scrollIntoView({ block: "start" });
  }

  function toggleSource(button) {
    const frame = button.closest(".frame");
    const expanded = frame.classList.toggle("expanded");
    button.setAttribute("aria-expanded", String(expanded));
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = expanded ? "Context only" : button.dataset.label;
    if (!expanded) {
      const current = frame.querySelector(".line.current");
      if (current) current.scrollIntoView({ block: "nearest" });
    }
  }

  async function textToCopy(button) {
    if (button.dataset.copyUrl) {
      // A huge traceback is only excerpted on the page; fetch the whole text.
      const response = await fetch(button.dataset.copyUrl, { credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }
    const source = document.getElementById(button.dataset.copy);
    return source ? source.textContent : "";
  }

  async function copyText(button) {
    const label = button.dataset.label || "Copy";
    // Without a clipboard, the text shown on the page is selected instead; a fetched form
    // (Markdown) has no such text, so it opens in a tab for the developer to copy.
    const source = button.dataset.label ? null : document.getElementById(button.dataset.copy || "plaintext-text");
    let done = false;
    try {
      await navigator.clipboard.writeText(await textToCopy(button));
      done = true;
    } catch (err) {
      if (!source) {
        if (button.dataset.copyUrl) window.open(button.dataset.copyUrl, "_blank", "noopener");
        return;
      }
      // No clipboard API (insecure origin or denied): select the text and copy the old way.
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done = document.execCommand("copy");
    }
    button.textContent = done ? "Copied" : "Press Ctrl+C";
    button.classList.toggle("copied", done);
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("copied");
    }, 1600);
  }

  document.addEventListener("click", function (event) {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const expand = target.closest("button.expand");
    if (expand) {
      toggleSource(expand);
      return;
    }
    const copy = target.closest("button.copy");
    if (copy) copyText(copy);
  });

  function init() {
    collapseByDefault();
    revealTarget();
  }

  window.addEventListener("hashchange", revealTarget);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
