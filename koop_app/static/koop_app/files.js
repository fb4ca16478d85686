// The source widget (koop_app/admin/files.py): browse the data folder, pick a file, upload one.
// Clicks are delegated from the document, so a widget that a script adds or replaces later
// (the dataset form swaps a provider's options without a reload) works with no set-up.
// DOMContentLoaded and a "koop:widgets" event (dispatched on the new content, bubbling) only
// refresh the labels. The views answer JSON: {error} with an HTTP status when refused.
(function () {
  "use strict";

  function inputOf(widget) { return widget.querySelector("[data-koop-source-input]"); }

  function setStatus(widget, text, failed) {
    var status = widget.querySelector(".koop-upload-status");
    if (!status) { return; }
    status.textContent = text;
    status.classList.toggle("koop-error", Boolean(failed));
  }

  function humanSize(bytes) {
    var units = ["bytes", "KB", "MB", "GB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? value + " bytes" : value.toFixed(1) + " " + units[unit];
  }

  function csrfToken(widget) {
    var form = widget.closest("form");
    var field = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (field && field.value) { return field.value; }
    field = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (field && field.value) { return field.value; }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function browserOf(widget) { return widget.querySelector(".koop-browser"); }

  function isOpen(widget) {
    var browser = browserOf(widget);
    return Boolean(browser && !browser.hidden);
  }

  // Uploads go to the folder being browsed, else to the default upload folder.
  function uploadFolder(widget) {
    if (isOpen(widget) && widget.dataset.koopFolder !== undefined) {
      return widget.dataset.koopFolder;
    }
    return widget.dataset.koopUploadFolder || "";
  }

  function refreshLabel(widget) {
    var target = widget.querySelector(".koop-upload-target");
    if (target) {
      var folder = uploadFolder(widget);
      target.textContent = folder ? folder + "/" : "the data folder";
    }
  }

  // A JSON answer, or an error carrying the server's message (or the HTTP status).
  function readAnswer(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      if (!response.ok) {
        throw new Error(body.error || "The server answered HTTP " + response.status + ".");
      }
      return body;
    });
  }

  function link(className, path, text) {
    var a = document.createElement("a");
    a.href = "#";
    a.className = className;
    a.dataset.path = path;
    a.textContent = text;
    return a;
  }

  function cell(row, content) {
    var td = document.createElement("td");
    if (typeof content === "string") { td.textContent = content; } else { td.appendChild(content); }
    row.appendChild(td);
    return td;
  }

  function shownDate(iso) {
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function render(widget, listing, chosen) {
    var browser = browserOf(widget);
    browser.textContent = "";
    var crumbs = document.createElement("div");
    crumbs.className = "koop-crumbs";
    crumbs.appendChild(link("koop-folder", "", listing.root));
    var walked = [];
    listing.path.split("/").filter(Boolean).forEach(function (part) {
      walked.push(part);
      crumbs.appendChild(document.createTextNode(" / "));
      crumbs.appendChild(link("koop-folder", walked.join("/"), part));
    });
    browser.appendChild(crumbs);
    var table = document.createElement("table");
    table.className = "koop-listing";
    var head = table.createTHead().insertRow();
    ["Name", "Size", "Modified"].forEach(function (title) {
      var th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    });
    var body = table.createTBody();
    if (listing.parent !== null) {
      cell(body.insertRow(), link("koop-folder koop-parent", listing.parent, "↑ up"));
    }
    listing.folders.forEach(function (folder) {
      var row = body.insertRow();
      cell(row, link("koop-folder", folder.path, folder.name + "/"));
      cell(row, "folder");
      cell(row, shownDate(folder.modified));
    });
    listing.files.forEach(function (file) {
      var row = body.insertRow();
      if (file.path === chosen) { row.className = "koop-chosen"; }
      cell(row, link("koop-file", file.path, file.name));
      cell(row, humanSize(file.size));
      cell(row, shownDate(file.modified));
    });
    browser.appendChild(table);
    var note = document.createElement("p");
    note.className = "koop-browser-note help";
    if (!listing.files.length) {
      note.textContent = "No GeoJSON or CSV files in this folder.";
    } else {
      note.textContent = "Click a file to use it as the source.";
    }
    if (listing.truncated) { note.textContent += " Only the first entries are listed."; }
    browser.appendChild(note);
  }

  function browse(widget, path, chosen) {
    var browser = browserOf(widget);
    browser.hidden = false;
    widget.querySelector(".koop-browse").setAttribute("aria-expanded", "true");
    browser.setAttribute("aria-busy", "true");
    var url = widget.dataset.koopFilesUrl + "?path=" + encodeURIComponent(path);
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(readAnswer)
      .then(function (listing) {
        widget.dataset.koopFolder = listing.path;
        render(widget, listing, chosen);
      })
      .catch(function (error) {
        if (path) { return browse(widget, "", chosen); } // a folder gone: start at the top
        browser.textContent = "";
        var message = document.createElement("p");
        message.className = "errornote";
        message.textContent = error.message;
        browser.appendChild(message);
      })
      .then(function () {
        browser.removeAttribute("aria-busy");
        refreshLabel(widget);
      });
  }

  function close(widget) {
    browserOf(widget).hidden = true;
    widget.querySelector(".koop-browse").setAttribute("aria-expanded", "false");
    refreshLabel(widget);
  }

  // The folder of the current value, when it is a path (not a URL).
  function currentFolder(widget) {
    var value = inputOf(widget).value.trim();
    if (!value || /^[a-z][a-z0-9+.-]*:/i.test(value)) { return ""; }
    return value.split("/").slice(0, -1).join("/");
  }

  function choose(widget, path) {
    var input = inputOf(widget);
    input.value = path;
    // Other scripts (the form's source check) listen to the input as to typing.
    input.dispatchEvent(new Event("input", {bubbles: true}));
    input.dispatchEvent(new Event("change", {bubbles: true}));
  }

  function upload(widget) {
    var picker = widget.querySelector("input.koop-upload");
    var file = picker.files && picker.files[0];
    if (!file) {
      setStatus(widget, "Choose a GeoJSON or CSV file first.", true);
      return Promise.resolve(null);
    }
    var accepted = (widget.dataset.koopAccept || "").split(",");
    var dot = file.name.lastIndexOf(".");
    var suffix = dot < 0 ? "" : file.name.slice(dot).toLowerCase();
    if (accepted.indexOf(suffix) < 0) {
      setStatus(widget, file.name + " is not a file the providers read: upload " +
                accepted.join(", ") + " files.", true);
      return Promise.resolve(null);
    }
    var limit = Number(widget.dataset.koopMaxUpload);
    if (limit && file.size > limit) {
      setStatus(widget, file.name + " is " + humanSize(file.size) +
                ": uploads are limited to " + humanSize(limit) + ".", true);
      return Promise.resolve(null);
    }
    var folder = uploadFolder(widget);
    var button = widget.querySelector(".koop-upload-button");
    var form = new FormData();
    form.append("file", file, file.name);
    button.disabled = true;
    setStatus(widget, "Uploading " + file.name + " (" + humanSize(file.size) + ")…", false);
    var url = widget.dataset.koopUploadUrl + "?folder=" + encodeURIComponent(folder);
    return fetch(url, {method: "POST", body: form, credentials: "same-origin",
                       headers: {Accept: "application/json", "X-CSRFToken": csrfToken(widget)}})
      .then(readAnswer)
      .then(function (saved) {
        choose(widget, saved.path);
        picker.value = "";
        setStatus(widget, saved.message + " The source is now " + saved.path + ".", false);
        if (isOpen(widget)) { browse(widget, folder, saved.path); }
        return saved;
      })
      .catch(function (error) {
        setStatus(widget, "The upload failed: " + error.message, true);
        return null;
      })
      .then(function (saved) {
        button.disabled = false;
        return saved;
      });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest(
      ".koop-browse, a.koop-folder, a.koop-file, .koop-upload-button");
    var widget = target && widgetOf(target);
    if (!widget || !widget.dataset.koopFilesUrl) { return; }
    event.preventDefault();
    if (target.classList.contains("koop-browse")) {
      if (isOpen(widget)) { close(widget); } else {
        browse(widget, currentFolder(widget), inputOf(widget).value.trim());
      }
    } else if (target.classList.contains("koop-folder")) {
      browse(widget, target.dataset.path, inputOf(widget).value.trim());
    } else if (target.classList.contains("koop-file")) {
      choose(widget, target.dataset.path);
      setStatus(widget, "The source is now " + target.dataset.path + ".", false);
      close(widget);
    } else {
      upload(widget);
    }
  });

  function widgetOf(element) { return element.closest(".koop-source"); }

  function init(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var widgets = Array.prototype.slice.call(scope.querySelectorAll(".koop-source"));
    if (scope.matches && scope.matches(".koop-source")) { widgets.push(scope); }
    widgets.forEach(refreshLabel);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("koop:widgets", function (event) { init(event.target); });
  window.koopFiles = {init: init, browse: browse, upload: upload};
})();
