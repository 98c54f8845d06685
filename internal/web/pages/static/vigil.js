// Vigil pages: live rows over server-sent events, and import progress.
// The pages work without it; it only saves a reload. No inline script:
// the CSP allows script from this site only.
(function () {
  "use strict";

  var zone = document.body.getAttribute("data-zone") || "UTC";

  function fmtTime(iso) {
    var d = new Date(iso);
    if (isNaN(d)) { return iso; }
    // The server's form: "2006-01-02 15:04:05 ZONE", in the user's zone.
    try {
      var p = {};
      new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short"
      }).formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
      return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second + " " + (p.timeZoneName || zone);
    } catch (e) {
      return d.toISOString();
    }
  }

  function td(text, cls) {
    var c = document.createElement("td");
    if (cls) { c.className = cls; }
    c.textContent = text == null ? "" : String(text);
    return c;
  }

  function levelCell(tbody, level) {
    var c = document.createElement("td");
    var s = document.createElement("span");
    s.className = "level " + level;
    s.title = level;
    s.textContent = tbody.getAttribute("data-level-" + level) || level;
    c.appendChild(s);
    return c;
  }

  // The source badge and the mark badges, as the server writes them
  // (web.view.appendMarks), from the labels the page carries.
  function marksCell(tbody, e) {
    var labels = {};
    try { labels = JSON.parse(tbody.getAttribute("data-marks") || "{}"); } catch (x) { labels = {}; }
    var c = document.createElement("td");
    c.className = "marks";
    var marks = e.marks || [];
    var folded = !e.first_hand && marks.indexOf("third_party") >= 0;
    var src = e.first_hand ? (labels.first || ["first-hand", ""]) : (labels.third || ["third party", ""]);
    var s = document.createElement("span");
    s.className = "src " + (e.first_hand ? "first" : "third");
    s.title = src[1];
    if (folded) {
      s.setAttribute("data-mark", "third_party");
      s.title += "\n" + ((labels.marks || {}).third_party || ["", "third_party"])[1];
    }
    s.textContent = src[0];
    c.appendChild(s);
    marks.forEach(function (m) {
      if (folded && m === "third_party") { return; }
      var l = (labels.marks || {})[m] || [m, m + " — " + (labels.unknown || "")];
      var b = document.createElement("span");
      b.className = "mark";
      b.setAttribute("data-mark", m);
      b.title = l[1];
      b.textContent = l[0];
      c.appendChild(document.createTextNode(" "));
      c.appendChild(b);
    });
    return c;
  }

  function startLive() {
    var obs = document.getElementById("live-rows");
    var alerts = document.getElementById("live-alerts");
    var status = document.getElementById("live-status");
    if (!obs && !alerts) { return; }
    var max = 50;
    var es = new EventSource("/api/v1/events");
    es.onopen = function () { if (status) { status.textContent = status.getAttribute("data-live-on") || "live"; } };
    es.onerror = function () { if (status) { status.textContent = status.getAttribute("data-live-off") || "reconnecting"; } };
    es.addEventListener("observation", function (m) {
      if (!obs) { return; }
      var e;
      try { e = JSON.parse(m.data); } catch (x) { return; }
      var tr = document.createElement("tr");
      tr.className = "fresh";
      tr.appendChild(td(fmtTime(e.time)));
      tr.appendChild(levelCell(obs, e.level || "unknown"));
      tr.appendChild(marksCell(obs, e));
      tr.appendChild(td((e.network || "") + " " + (e.method || "")));
      tr.appendChild(td(e.item, "mono"));
      tr.appendChild(td(e.endpoint, "mono ep"));
      var t = document.createElement("td");
      if (e.target) {
        var a = document.createElement("a");
        a.href = "/targets/" + encodeURIComponent(e.target);
        a.textContent = e.target;
        t.appendChild(a);
      }
      tr.appendChild(t);
      var empty = obs.querySelector("tr.empty");
      if (empty) { empty.remove(); }
      obs.insertBefore(tr, obs.firstChild);
      while (obs.rows.length > max) { obs.deleteRow(obs.rows.length - 1); }
    });
    es.addEventListener("alert", function (m) {
      if (!alerts) { return; }
      var e;
      try { e = JSON.parse(m.data); } catch (x) { return; }
      var li = document.createElement("li");
      li.textContent = fmtTime(e.time) + " — " + (e.message || "");
      alerts.insertBefore(li, alerts.firstChild);
      var none = alerts.querySelector("li.empty");
      if (none) { none.remove(); }
    });
  }

  // Numbers as the server writes them (i18n.Int): French groups thousands
  // with a narrow no-break space, English with a comma.
  function num(n) {
    var s = String(Math.trunc(Number(n) || 0)), neg = s.charAt(0) === "-";
    if (neg) { s = s.slice(1); }
    var sep = document.documentElement.lang === "fr" ? "\u202f" : ",";
    var out = "";
    for (var i = 0; i < s.length; i++) {
      if (i > 0 && (s.length - i) % 3 === 0) { out += sep; }
      out += s.charAt(i);
    }
    return (neg ? "-" : "") + out;
  }

  function startProgress() {
    var box = document.getElementById("import-progress");
    if (!box || box.getAttribute("data-state") !== "running") { return; }
    var id = box.getAttribute("data-job");
    var bar = box.querySelector("progress");
    var text = box.querySelector(".done");
    function poll() {
      fetch("/api/v1/imports/" + encodeURIComponent(id), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (bar && j.total > 0) { bar.max = j.total; bar.value = j.done; }
          if (text) { text.textContent = num(j.done) + " / " + (j.total > 0 ? num(j.total) : "?"); }
          if (j.state === "running") { setTimeout(poll, 1000); } else { location.reload(); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 500);
  }

  startLive();
  startProgress();
})();
