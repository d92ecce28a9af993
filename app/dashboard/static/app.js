// vidgate dashboard: a little progressive JavaScript (no framework, no build step, nothing external).
// Forms work without it; it adds confirmations, copy buttons, dialogs, channel tests, live progress
// and the playground. The CSRF token comes from <body data-csrf>, never from storage.
"use strict";

(function () {
  const csrf = () => document.body.dataset.csrf || "";
  const TERMINAL = new Set(["completed", "failed"]);

  async function api(url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = csrf();
    const r = await fetch(url, opts);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const msg = body && body.error ? body.error.message : "HTTP " + r.status;
      throw new Error(msg);
    }
    return body;
  }

  function badge(el, status) {
    if (!el) return;
    const kinds = { queued: "neutral", in_progress: "info", completed: "ok", failed: "bad" };
    el.className = "badge " + (kinds[status] || "neutral");
    el.dataset.status = status;
    el.textContent = status.replace("_", " ");
  }

  // -- confirmations, dialogs, copy ---------------------------------------------------------------
  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  }, true);

  document.addEventListener("click", function (ev) {
    const t = ev.target.closest("button");
    if (!t) return;
    if (t.dataset.editKey) {
      editKey(t);
    } else if (t.hasAttribute("data-close")) {
      const d = t.closest("dialog");
      if (d) d.close();
    } else if (t.dataset.copy) {
      copy(t, document.querySelector(t.dataset.copy));
    } else if (t.dataset.testChannel) {
      testChannel(t);
    }
  });

  function editKey(button) {
    // one dialog at a time, cloned from <template id="edit-key"> and removed when closed
    const tpl = document.getElementById("edit-key");
    if (!tpl) return;
    const dialog = tpl.content.firstElementChild.cloneNode(true);
    const form = dialog.querySelector("form");
    const d = button.dataset;
    form.action = "/dashboard/keys/" + encodeURIComponent(d.editKey) + "/limits";
    dialog.setAttribute("aria-label", "Edit limits of " + d.name);
    dialog.querySelector("[data-field=name]").textContent = d.name;
    ["models", "rpm_limit", "max_concurrent", "quota_credits", "expires_at", "ip_allowlist"].forEach(function (f) {
      form.elements[f].value = d[f] || "";
    });
    form.elements.enabled.checked = d.enabled === "true";
    dialog.addEventListener("close", function () { dialog.remove(); });
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  async function copy(button, source) {
    if (!source) return;
    const text = source.textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      document.execCommand("copy");
    }
    const before = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = before; }, 1500);
  }

  async function testChannel(button) {
    const out = button.closest("td").querySelector("output");
    button.disabled = true;
    out.textContent = "Testing…";
    out.className = "small muted";
    try {
      const r = await api("/dashboard/api/channels/" + encodeURIComponent(button.dataset.testChannel) + "/test", { method: "POST" });
      out.textContent = r.message;
      out.className = "small " + (r.ok === true ? "ok-text" : r.ok === false ? "error" : "muted");
    } catch (e) {
      out.textContent = e.message;
      out.className = "small error";
    } finally {
      button.disabled = false;
    }
  }

  // -- live updates ------------------------------------------------------------------------------------
  function watch(id, onUpdate) {
    let stopped = false;
    async function tick() {
      if (stopped) return;
      try {
        const v = await api("/dashboard/api/videos/" + encodeURIComponent(id));
        if (onUpdate(v) === false || TERMINAL.has(v.status)) return;
      } catch (e) {
        // a transient error: try again a little later
      }
      setTimeout(tick, 1000);
    }
    setTimeout(tick, 800);
    return function () { stopped = true; };
  }

  function liveRows(root) {
    root.querySelectorAll("tr[data-live]").forEach(function (tr) {
      watch(tr.dataset.live, function (v) {
        badge(tr.querySelector(".badge[data-status]"), v.status);
        const p = tr.querySelector("[data-progress]");
        if (p) p.textContent = TERMINAL.has(v.status) ? "" : v.progress + "%";
      });
    });
  }

  function liveDetail(root) {
    const box = root.querySelector("#video-detail");
    if (!box || TERMINAL.has(box.dataset.status)) return;
    watch(box.dataset.id, function (v) {
      box.querySelectorAll("[data-progress]").forEach(function (el) { el.textContent = v.progress + "%"; });
      const bar = box.querySelector("[data-progress-bar]");
      if (bar) bar.value = v.progress;
      badge(document.querySelector(".pagehead .badge[data-status]"), v.status);
      if (TERMINAL.has(v.status)) swapMain();
    });
  }

  async function swapMain() {
    // the finished page, without a reload: fetch it and swap <main>
    const r = await fetch(location.href, { credentials: "same-origin" });
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    const fresh = doc.querySelector("main");
    if (fresh) {
      document.querySelector("main").replaceWith(fresh);
      init(fresh);
    }
  }

  // -- playground ------------------------------------------------------------------------------------
  function playground(root) {
    const form = root.querySelector("#playground");
    if (!form) return;
    const capsEl = document.getElementById("model-caps");
    const caps = capsEl ? JSON.parse(capsEl.textContent) : {};
    const model = form.querySelector("#p-model");
    const size = form.querySelector("#p-size");
    const seconds = form.querySelector("#p-seconds");
    const hint = document.getElementById("p-hint");
    const result = document.getElementById("p-result");

    function describe(first) {
      const c = caps[model.value];
      if (!c) return;
      const list = document.getElementById("p-sizes");
      list.replaceChildren();
      (c.sizes || [c.default_size]).forEach(function (s) {
        const o = document.createElement("option");
        o.value = s;
        list.appendChild(o);
      });
      if (!first) {
        size.value = c.default_size;
        seconds.value = c.default_seconds;
      }
      const secs = c.seconds ? c.seconds.join(", ") : c.seconds_range.join("–");
      const sizes = c.sizes ? c.sizes.join(", ") : "any even WxH within " + c.side_range.join("–");
      hint.textContent = "Sizes: " + sizes + ". Seconds: " + secs + ". Reference image: " + c.image_input + ".";
    }
    model.addEventListener("change", function () { describe(false); });
    describe(true);

    function show(v) {
      result.replaceChildren();
      const head = document.createElement("p");
      const link = document.createElement("a");
      link.href = "/dashboard/videos/" + encodeURIComponent(v.id);
      link.textContent = v.id;
      link.className = "mono";
      const b = document.createElement("span");
      badge(b, v.status);
      head.append(link, " ", b);
      result.appendChild(head);
      if (v.status === "completed") {
        const video = document.createElement("video");
        video.controls = true;
        video.autoplay = true;
        video.muted = true;
        video.playsInline = true;
        video.src = "/dashboard/videos/" + encodeURIComponent(v.id) + "/content/video";
        result.appendChild(video);
      } else if (v.status === "failed") {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = (v.error ? v.error.code + ": " + v.error.message : "failed");
        result.appendChild(p);
      } else {
        const bar = document.createElement("progress");
        bar.max = 100;
        bar.value = v.progress;
        const label = document.createElement("span");
        label.textContent = " " + v.progress + "%";
        result.append(bar, label);
      }
    }

    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      const data = new FormData(form);
      const file = data.get("input_reference");
      if (!file || !file.size) data.delete("input_reference");
      button.disabled = true;
      try {
        const v = await api("/dashboard/api/playground", { method: "POST", body: data });
        show(v);
        if (!TERMINAL.has(v.status)) watch(v.id, show);
      } catch (e) {
        const p = document.createElement("p");
        p.className = "alert bad";
        p.setAttribute("role", "alert");
        p.textContent = e.message;
        result.replaceChildren(p);
      } finally {
        button.disabled = false;
      }
    });
  }

  function init(root) {
    liveRows(root);
    liveDetail(root);
    playground(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
