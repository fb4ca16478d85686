// The dataset form: picking another provider swaps in its option fields at once (values of
// options the two providers share are kept), shows its description under the picker, and
// shows "Host" only for providers whose routes take one. After a swap the document gets a
// "koop:options-swapped" event (widgets inside the options, e.g. the data folder's browser,
// bind to the new fields on it).
(function () {
  "use strict";

  function valuesOf(root) {
    var kept = {};
    root.querySelectorAll("input[name^='opt_'], select[name^='opt_'], textarea[name^='opt_']")
      .forEach(function (input) {
        if (input.type === "checkbox") { kept[input.name] = {checked: input.checked}; }
        else if (input.type !== "password" && input.value !== "") {
          kept[input.name] = {value: input.value};
        }
      });
    return kept;
  }

  function restore(root, kept) {
    root.querySelectorAll("input[name^='opt_'], select[name^='opt_'], textarea[name^='opt_']")
      .forEach(function (input) {
        var old = kept[input.name];
        if (!old) { return; }
        if (input.type === "checkbox") { input.checked = old.checked; }
        else if (input.tagName === "SELECT") {
          if (Array.prototype.some.call(input.options, function (o) { return o.value === old.value; })) {
            input.value = old.value;
          }
        } else { input.value = old.value; }
      });
  }

  function showFacts(select) {
    var chosen = select.options[select.selectedIndex];
    var description = document.getElementById("koop-provider-description");
    if (description) {
      description.textContent = chosen && chosen.value ? (chosen.dataset.description || "")
        : "Pick where the data comes from.";
    }
    var hostRow = document.querySelector(".form-row.field-host");
    var hostInput = document.getElementById("id_host");
    if (hostRow) {
      var wanted = Boolean(chosen && chosen.dataset.hosts === "true");
      hostRow.classList.toggle("hidden", !wanted && !(hostInput && hostInput.value));
    }
    offerConnections(hostInput, chosen && chosen.dataset.connections);
  }

  // A provider whose host names a configured server: its names as suggestions of the input.
  function offerConnections(input, names) {
    if (!input) { return; }
    var list = document.getElementById("koop-host-names");
    if (!list) {
      list = document.createElement("datalist");
      list.id = "koop-host-names";
      input.insertAdjacentElement("afterend", list);
    }
    list.textContent = "";
    var parsed = [];
    try { parsed = names ? JSON.parse(names) : []; } catch (e) { parsed = []; }
    parsed.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      list.appendChild(option);
    });
    if (parsed.length) { input.setAttribute("list", list.id); }
    else { input.removeAttribute("list"); }
  }

  function swap(select) {
    var url = select.dataset.koopOptionsUrl;
    var old = document.querySelector("fieldset.koop-options");
    if (!url || !old || !select.value) { return; }
    fetch(url + "?provider=" + encodeURIComponent(select.value),
          {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (body) {
        var holder = document.createElement("div");
        holder.innerHTML = body.html;
        var fresh = holder.querySelector("fieldset");
        if (!fresh) { return; }
        restore(fresh, valuesOf(old));
        var current = document.querySelector("fieldset.koop-options");
        current.replaceWith(fresh);
        var panel = document.getElementById("koop-check");
        if (panel) { panel.textContent = ""; }  // found in the other provider's source
        document.dispatchEvent(new CustomEvent("koop:options-swapped", {detail: body}));
        // Widgets inside the new options (the data folder's browser) set themselves up.
        fresh.dispatchEvent(new CustomEvent("koop:widgets", {bubbles: true}));
      })
      .catch(function () {
        var note = document.getElementById("koop-provider-description");
        if (note) { note.textContent = "The options of this provider could not be loaded; " +
                                       "save or check the form to see them."; }
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_provider");
    if (!select) { return; }
    showFacts(select);
    select.addEventListener("change", function () { showFacts(select); swap(select); });
  });
})();
