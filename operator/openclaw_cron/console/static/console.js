// OpenClaw cron console: the only script of the pages besides htmx (static, no data inside).
// Actions are merge patches of the OpenClawCronJob sent by the browser to the API server on the
// same origin (the kubectl proxy), as the user: Kubernetes RBAC decides, and a refusal shows the
// API server's own Status message. `application/merge-patch+json` is not a simple request type,
// so no other site can make the browser send it (CSRF).
(function () {
  "use strict";

  function flash(text, isError) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = text;
    box.className = isError ? "flash error" : "flash ok";
    box.hidden = false;
  }

  function nowValue() {
    // RFC 3339 with milliseconds, like `kubectl openclaw run`: a fresh value per click.
    return new Date().toISOString();
  }

  function annotation(key, value) {
    var annotations = {};
    annotations[key] = value;
    return { metadata: { annotations: annotations } };
  }

  function randomId() {
    var bytes = new Uint8Array(5);
    window.crypto.getRandomValues(bytes);
    return "bf-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function body(section, action, form) {
    var d = section.dataset;
    if (action === "run-now") { return annotation(d.runNow, nowValue()); }
    if (action === "suspend") { return { spec: { suspend: true } }; }
    if (action === "unsuspend") { return { spec: { suspend: false } }; }
    if (action === "resume") { return annotation(d.resume, nowValue()); }
    if (action === "backfill") {
      var request = { from: form.elements.from.value.trim(), to: form.elements.to.value.trim(),
                      max: parseInt(form.elements.max.value, 10) || 100, id: randomId() };
      return annotation(d.backfill, JSON.stringify(request));
    }
    return null;
  }

  function patch(section, action, form) {
    var payload = body(section, action, form);
    if (payload === null) { return; }
    fetch(section.dataset.jobPath, {
      method: "PATCH",
      credentials: "same-origin",
      headers: { "Content-Type": "application/merge-patch+json", "Accept": "application/json" },
      body: JSON.stringify(payload)
    }).then(function (resp) {
      return resp.text().then(function (text) {
        if (resp.ok) {
          flash(action + ": requested", false);
          var live = document.getElementById("job-live");
          if (live) { live.dispatchEvent(new Event("refresh")); }
          return;
        }
        var message = text;
        try {
          var status = JSON.parse(text);
          message = (status.reason ? status.reason + ": " : "") + (status.message || text);
        } catch (e) { /* not a Status: show the text as it came */ }
        flash(action + " refused (" + resp.status + "): " + message, true);
      });
    }).catch(function (err) { flash(action + " failed: " + err, true); });
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button.action") : null;
    if (!button) { return; }
    var section = button.closest("section.actions");
    if (section) { patch(section, button.dataset.action, null); }
  });

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches("form.backfill")) { return; }
    ev.preventDefault();
    patch(form.closest("section.actions"), "backfill", form);
  });

  // humanize.human_duration's style (kubectl's ages), so a countdown reads as the server rendered it
  function units(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) { return s + "s"; }
    var m = Math.floor(s / 60); s = s % 60;
    if (m < 10) { return s ? m + "m" + s + "s" : m + "m"; }
    if (m < 60) { return m + "m"; }
    var h = Math.floor(m / 60); m = m % 60;
    if (h < 8) { return m ? h + "h" + m + "m" : h + "h"; }
    if (h < 48) { return h + "h"; }
    return Math.floor(h / 24) + "d";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) { return; }
      var s = (at - now) / 1000;
      el.textContent = s >= 0 ? "in " + units(s) : units(-s) + " ago";
    });
  }
  setInterval(tick, 1000);
})();
