/* The map preview: a service's layers (or one layer) drawn through its own FeatureServer with
 * Esri Leaflet. No basemap unless the site configures one (KOOP["PREVIEW_BASEMAP"]): a plain
 * background, the features, the view fitted to the layers' extent.
 *
 * window.koopPreview tells how it went: {ready, features, layers: [{id, name, features}],
 * errors}; "ready" turns true once every layer has loaded or failed (tests wait for it).
 */
(function () {
  "use strict";

  var state = { ready: false, features: 0, layers: [], errors: [] };
  window.koopPreview = state;
  var element = document.getElementById("koop-map");
  var status = document.getElementById("koop-map-status");
  var STROKE = "#0b4f94";
  var FILL = "#1f78d1";

  function say(text, failed) {
    if (status) {
      status.textContent = text;
      status.classList.toggle("failed", Boolean(failed));
    }
  }

  function finish() {
    state.features = state.layers.reduce(function (sum, layer) { return sum + layer.features; }, 0);
    var parts = state.layers.map(function (layer) {
      return layer.name + ": " + layer.features + " feature" + (layer.features === 1 ? "" : "s");
    });
    if (state.errors.length) {
      say(parts.concat(state.errors).join(" · "), true);
    } else {
      say(parts.join(" · ") || "Nothing to draw.");
    }
    state.ready = true;
  }

  function fail(message) {
    state.errors.push(message);
    finish();
  }

  if (!element || !window.L || !window.L.esri) {
    fail("The map libraries did not load.");
    return;
  }

  var serviceUrl = element.getAttribute("data-service-url");
  var wanted = element.getAttribute("data-layer");
  var token = element.getAttribute("data-token") || undefined;
  var basemap = element.getAttribute("data-basemap");

  // GeoServices answers errors as HTTP 200 with {"error": {...}}.
  function getJSON(url) {
    var params = new URLSearchParams({ f: "json" });
    if (token) {
      params.set("token", token);
    }
    return fetch(url + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status + " from " + url);
        }
        return response.json();
      })
      .then(function (body) {
        if (body && body.error) {
          var error = new Error(body.error.message || "error " + body.error.code);
          error.code = body.error.code;
          throw error;
        }
        return body;
      });
  }

  var map = L.map(element, { zoomSnap: 0.25, worldCopyJump: false });
  map.setView([20, 0], 1);
  if (basemap) {
    L.tileLayer(basemap, {
      attribution: element.getAttribute("data-basemap-attribution") || "",
      maxZoom: 19
    }).addTo(map);
  }

  function boundsOf(extent) {
    if (!extent || extent.xmin === null || extent.xmin === undefined) {
      return null;
    }
    var wkid = extent.spatialReference &&
      (extent.spatialReference.latestWkid || extent.spatialReference.wkid);
    var southWest = [extent.ymin, extent.xmin];
    var northEast = [extent.ymax, extent.xmax];
    if (wkid === 3857 || wkid === 102100) {
      var low = L.Projection.SphericalMercator.unproject(L.point(extent.xmin, extent.ymin));
      var high = L.Projection.SphericalMercator.unproject(L.point(extent.xmax, extent.ymax));
      southWest = [low.lat, low.lng];
      northEast = [high.lat, high.lng];
    } else if (wkid && wkid !== 4326) {
      return null;
    }
    var clamp = function (lat) { return Math.max(-85, Math.min(85, lat)); };
    return L.latLngBounds([clamp(southWest[0]), southWest[1]], [clamp(northEast[0]), northEast[1]]);
  }

  function fit(bounds) {
    if (!bounds || !bounds.isValid()) {
      return;
    }
    if (bounds.getNorthEast().equals(bounds.getSouthWest())) {
      map.setView(bounds.getCenter(), 12);
    } else {
      map.fitBounds(bounds, { padding: [16, 16] });
    }
  }

  // Attribute values as text (never as HTML: they come from the data).
  function popupOf(properties, info) {
    var dates = {};
    (info.fields || []).forEach(function (field) {
      if (field.type === "esriFieldTypeDate") {
        dates[field.name] = true;
      }
    });
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = String(properties[info.displayField] !== undefined
      ? properties[info.displayField] : info.name);
    box.appendChild(title);
    var table = document.createElement("table");
    Object.keys(properties).forEach(function (name) {
      var row = table.insertRow();
      var key = document.createElement("th");
      key.textContent = name;
      row.appendChild(key);
      var value = properties[name];
      if (dates[name] && typeof value === "number") {
        value = new Date(value).toISOString();
      }
      row.insertCell().textContent = value === null ? "null" : String(value);
    });
    box.appendChild(table);
    return box;
  }

  function draw(info) {
    var entry = { id: info.id, name: info.name || "Layer " + info.id, features: 0 };
    state.layers.push(entry);
    return new Promise(function (resolve) {
      var options = {
        url: serviceUrl + "/" + info.id,
        token: token,
        // Every feature of the view, page after page, whatever maxRecordCount is.
        fetchAllFeatures: true,
        onEachFeature: function (feature, drawn) {
          drawn.bindPopup(function () { return popupOf(feature.properties || {}, info); });
        }
      };
      // One or the other: Esri Leaflet's redraw calls pointToLayer on any feature with a
      // style, and style on circle markers.
      if (info.geometryType === "esriGeometryPoint") {
        options.pointToLayer = function (feature, latlng) {
          return L.circleMarker(latlng, {
            radius: 5, color: "#ffffff", weight: 1, fillColor: FILL, fillOpacity: 0.9
          });
        };
      } else {
        options.style = function () {
          return { color: STROKE, weight: 1.5, fillColor: FILL, fillOpacity: 0.3 };
        };
      }
      var layer = L.esri.featureLayer(options);
      layer.on("requesterror", function (event) {
        state.errors.push(entry.name + ": " + (event.message || "a request failed"));
      });
      layer.once("load", function () {
        var count = 0;
        layer.eachFeature(function () { count += 1; });
        entry.features = count;
        resolve(layer);
      });
      layer.addTo(map);
    });
  }

  getJSON(serviceUrl)
    .then(function (service) {
      var ids = (service.layers || []).map(function (layer) { return layer.id; });
      if (wanted !== "") {
        ids = [Number(wanted)];
      }
      return Promise.all(ids.map(function (id) { return getJSON(serviceUrl + "/" + id); }));
    })
    .then(function (infos) {
      var drawable = infos.filter(function (info) { return info.geometryType; });
      if (!drawable.length) {
        fail(infos.length ? "This layer has no geometry: see its query page for its rows."
          : "This service has no layers.");
        return null;
      }
      var all = null;
      drawable.forEach(function (info) {
        var bounds = boundsOf(info.extent);
        if (bounds) {
          all = all ? all.extend(bounds) : bounds;
        }
      });
      fit(all);
      return Promise.all(drawable.map(draw))
        .then(function (layers) {
          if (layers.length > 1) {
            var overlays = {};
            layers.forEach(function (layer, index) { overlays[state.layers[index].name] = layer; });
            L.control.layers(null, overlays, { collapsed: false }).addTo(map);
          }
          finish();
        });
    })
    .catch(function (error) {
      fail(error.message || String(error));
    });
})();
