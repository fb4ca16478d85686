/* The pages for people: the "Copy" buttons next to service and layer URLs. */
(function () {
  "use strict";

  function flash(button, text) {
    var before = button.textContent;
    button.textContent = text;
    button.classList.add("done");
    window.setTimeout(function () {
      button.textContent = before;
      button.classList.remove("done");
    }, 1500);
  }

  function copyBySelection(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (ignored) {
      return false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) {
      return;
    }
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) {
      return;
    }
    // The Clipboard API needs a secure context (HTTPS or localhost); else select and copy.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () {
        flash(button, "Copied");
      }, function () {
        flash(button, copyBySelection(input) ? "Copied" : "Press Ctrl+C");
      });
    } else {
      flash(button, copyBySelection(input) ? "Copied" : "Press Ctrl+C");
    }
  });
})();
