// Live refresh progress in the dataset list and page: every [data-koop-progress] element
// shows what the admin's progress endpoint says about its dataset, polled while one runs.
(function () {
  "use strict";
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
          span.textContent = p ? p.text : "";
          span.title = p && p.trigger ? "refresh (" + p.trigger + ")" : "";
          running = running || Boolean(p && p.running);
        });
        setTimeout(poll, running ? 1000 : 5000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  document.addEventListener("DOMContentLoaded", poll);
})();
