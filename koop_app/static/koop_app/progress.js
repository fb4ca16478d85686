// Live refresh progress in the dataset list and page: every [data-koop-progress] element
// shows what the admin's progress endpoint says about its dataset, polled while one runs.
// window.koopProgress.busy() polls every second from now on (a refresh was just asked for).
(function () {
  "use strict";
  var timer = null;
  var eager = false;

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    var spans = document.querySelectorAll("[data-koop-progress]");
    if (!spans.length) { return; }
    var ids = Array.prototype.map.call(spans, function (s) { return s.dataset.koopProgress; });
    var url = spans[0].dataset.koopProgressUrl + "?ids=" + ids.join(",");
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {datasets: {}}; })
      .then(function (body) {
        var running = false;
        spans.forEach(function (span) {
          var p = body.datasets[span.dataset.koopProgress];
          span.textContent = p ? p.text : (span.dataset.koopIdle || "");
          span.title = p && p.trigger ? "refresh (" + p.trigger + ")" : "";
          span.classList.toggle("koop-running", Boolean(p && p.running));
          running = running || Boolean(p && p.running);
        });
        later(running || eager ? 1000 : 5000);
      })
      .catch(function () { later(10000); });
  }

  window.koopProgress = {
    busy: function () {
      eager = true;
      later(300);
    }
  };
  document.addEventListener("DOMContentLoaded", poll);
})();
