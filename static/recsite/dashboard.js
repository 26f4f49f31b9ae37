/*
 * recsite dashboard behaviour. Pages hold no inline script: they mark elements with data
 * attributes and this file does the rest (see docs/dashboard.md, "How to add a page").
 *
 *   <div class="chart" data-chart="ID">            draws the plotly spec in {{ spec|json_script:"ID" }}
 *   <section data-fragment-url="URL">              fetches URL and puts its HTML inside (into the
 *                                                   section's .fragment-body when it has one)
 *   <form data-live-target="ID">                   on change, submits the form in the background and
 *                                                   puts the answer's HTML into #ID (live preview)
 *   <div class="progress" data-poll-url="URL">      polls a job's JSON until it ends (data-refresh:
 *                                                   reloads the fragments it selects then;
 *                                                   data-reload: reloads the page once
 *                                                   the job succeeded)
 *   <form data-confirm="Question?">                 asks before submitting
 *
 * plotly.js is served by the app itself (body[data-plotly-src]) and loaded only on pages
 * that draw a chart.
 */
(function () {
  "use strict";

  var plotlyPromise = null;

  function ensurePlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (plotlyPromise) return plotlyPromise;
    var src = document.body.getAttribute("data-plotly-src");
    plotlyPromise = new Promise(function (resolve, reject) {
      if (!src) { reject(new Error("no plotly source on this page")); return; }
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () { resolve(window.Plotly); };
      script.onerror = function () { reject(new Error("plotly.js failed to load")); };
      document.head.appendChild(script);
    });
    return plotlyPromise;
  }

  function findSpec(root, id) {
    // Fragments may repeat an id already on the page: prefer the one inside the same root.
    var node = (root.querySelector && root.querySelector("script[id='" + id + "']")) || document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function drawCharts(root) {
    var charts = Array.prototype.slice.call(root.querySelectorAll("[data-chart]"));
    if (!charts.length) return Promise.resolve();
    return ensurePlotly().then(function (Plotly) {
      charts.forEach(function (el) {
        var spec = findSpec(root, el.getAttribute("data-chart"));
        if (!spec) return;
        var layout = Object.assign({ margin: { t: 40, r: 20, b: 40, l: 50 } }, spec.layout || {});
        Plotly.newPlot(el, spec.data || [], layout, { responsive: true, displaylogo: false });
        el.setAttribute("data-drawn", "true");
      });
    });
  }

  function enhance(root) {
    drawCharts(root);
    loadFragments(root);
    startProgress(root);
    bindConfirms(root);
    bindLiveForms(root);
  }

  function inject(target, html) {
    target.innerHTML = html;
    enhance(target);
  }

  function fetchHtml(url, options) {
    var opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers["X-Requested-With"] = "XMLHttpRequest";
    return fetch(url, opts).then(function (response) {
      return response.text().then(function (text) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return text;
      });
    });
  }

  function loadFragment(section) {
    var url = section.getAttribute("data-fragment-url");
    var target = section.querySelector(":scope > .fragment-body") || section;
    section.classList.add("loading");
    return fetchHtml(url).then(function (html) {
      section.classList.remove("loading");
      section.setAttribute("data-loaded", "true");
      inject(target, html);
    }).catch(function (err) {
      section.classList.remove("loading");
      target.innerHTML = "";
      var p = document.createElement("p");
      p.className = "errors";
      p.textContent = "Could not load this panel (" + err.message + ").";
      target.appendChild(p);
    });
  }

  function loadFragments(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-fragment-url]"), function (section) {
      if (section.getAttribute("data-loaded") || section.classList.contains("loading")) return;
      loadFragment(section);
    });
  }

  /* Reload every fragment matching a selector (e.g. a history table after a job ends). */
  function reloadFragments(selector) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), function (section) {
      section.removeAttribute("data-loaded");
      loadFragment(section);
    });
  }

  function setProgress(el, percent, text, state) {
    var pct = Math.max(0, Math.min(100, percent));
    var bar = el.querySelector(".progress-bar");
    var label = el.querySelector(".progress-label");
    if (bar) bar.style.width = pct + "%";
    if (label) label.textContent = text;
    el.setAttribute("aria-valuenow", String(Math.round(pct)));
    el.setAttribute("data-state", state);
    ["queued", "running", "succeeded", "failed"].forEach(function (s) { el.classList.toggle(s, s === state); });
  }

  function startProgress(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".progress[data-poll-url]"), function (el) {
      if (el.getAttribute("data-polling")) return;
      el.setAttribute("data-polling", "true");
      var url = el.getAttribute("data-poll-url");
      var every = parseInt(el.getAttribute("data-poll-ms") || "1000", 10);
      function tick() {
        fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
          .then(function (job) {
            var state = job.state || "running";
            var pct = Number(job.progress || 0);
            var text = Math.round(pct) + "% · " + state;
            if (state === "failed" && job.error) text += ": " + job.error.split("\n")[0];
            setProgress(el, state === "succeeded" ? 100 : pct, state === "succeeded" ? "100% · succeeded" : text, state);
            if (state === "succeeded" || state === "failed") {
              var refresh = el.getAttribute("data-refresh");
              if (refresh) reloadFragments(refresh);
              // Only a success changes what the page shows; a failure stays on the bar.
              if (state === "succeeded" && el.getAttribute("data-reload")) window.location.reload();
              return;
            }
            window.setTimeout(tick, every);
          })
          .catch(function (err) {
            setProgress(el, 0, "Could not read progress (" + err.message + ")", "failed");
          });
      }
      tick();
    });
  }

  function bindConfirms(root) {
    Array.prototype.forEach.call(root.querySelectorAll("form[data-confirm]"), function (form) {
      if (form.getAttribute("data-confirm-bound")) return;
      form.setAttribute("data-confirm-bound", "true");
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  function bindLiveForms(root) {
    Array.prototype.forEach.call(root.querySelectorAll("form[data-live-target]"), function (form) {
      if (form.getAttribute("data-live-bound")) return;
      form.setAttribute("data-live-bound", "true");
      var timer = null;
      var seq = 0;
      function refresh() {
        var target = document.getElementById(form.getAttribute("data-live-target"));
        if (!target) return;
        var url = form.getAttribute("data-live-url") || form.getAttribute("action") || window.location.pathname;
        var method = (form.getAttribute("method") || "get").toUpperCase();
        var data = new FormData(form);
        var mine = ++seq;
        var request;
        if (method === "GET") {
          var query = new URLSearchParams(data).toString();
          request = fetchHtml(url + (url.indexOf("?") >= 0 ? "&" : "?") + query);
        } else {
          request = fetchHtml(url, { method: method, body: data });
        }
        target.classList.add("loading");
        request.then(function (html) {
          if (mine !== seq) return; // a newer change already answered or is on its way
          target.classList.remove("loading");
          inject(target, html);
        }).catch(function (err) {
          target.classList.remove("loading");
          target.textContent = "Could not update the preview (" + err.message + ").";
        });
      }
      function schedule() {
        window.clearTimeout(timer);
        timer = window.setTimeout(refresh, parseInt(form.getAttribute("data-live-delay") || "300", 10));
      }
      form.addEventListener("input", schedule);
      form.addEventListener("change", schedule);
    });
  }

  window.recsite = { drawCharts: drawCharts, ensurePlotly: ensurePlotly, reloadFragments: reloadFragments, enhance: enhance };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  } else {
    enhance(document);
  }
})();
