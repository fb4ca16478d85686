// The dataset list and page in the admin: copy buttons, and live progress while a
// "Refresh now" posted from the page is running here (progress.js polls faster meanwhile).
(function () {
  "use strict";

  // The clipboard API where the page may use it (https, or loopback); else the old way, a
  // selected text and execCommand("copy"), which works on plain http too.
  function copyText(text, input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text, input);
      });
    }
    return fallbackCopy(text, input);
  }

  function fallbackCopy(text, input) {
    var field = input;
    if (!field) {
      field = document.createElement("textarea");
      field.value = text;
      field.setAttribute("readonly", "");
      field.style.position = "fixed";
      field.style.opacity = "0";
      document.body.appendChild(field);
    }
    field.focus();
    field.select();
    var done = false;
    try {
      done = document.execCommand("copy");
    } catch (error) {
      done = false;
    }
    if (!input) {
      document.body.removeChild(field);
    }
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function say(element, text) {
    if (!element) { return; }
    element.textContent = text;
    clearTimeout(element.koopTimer);
    element.koopTimer = setTimeout(function () {
      element.textContent = element.koopIdle || "";
    }, 4000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#koop-copy-url, button.koop-copy");
    if (!button) { return; }
    event.preventDefault();
    var input = null;
    var text;
    var status;
    if (button.dataset.copyTarget) {  // the page: the input holds the absolute URL
      input = document.getElementById(button.dataset.copyTarget);
      text = input.value;
      status = document.getElementById(button.dataset.copyStatus);
    } else {  // the list: a path, made absolute from this page's own address
      text = new URL(button.dataset.copyUrl, window.location.href).href;
      status = button;
      button.koopIdle = button.koopIdle || button.textContent;
    }
    copyText(text, input).then(function () {
      say(status, "Copied");
    }, function () {
      if (input) { input.select(); }
      say(status, "Press Ctrl+C");
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-koop-refresh")) { return; }
    // A refresh without a Celery worker runs inside this POST: show its progress meanwhile.
    var button = form.querySelector("button");
    setTimeout(function () {  // after the submission has read the form
      if (button) {
        button.disabled = true;
        button.textContent = "Refreshing…";
      }
    }, 0);
    if (window.koopProgress) { window.koopProgress.busy(); }
  });
})();
