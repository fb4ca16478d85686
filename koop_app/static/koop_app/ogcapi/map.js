/* The map of an OGC API items or item page: the page's features (CRS84 GeoJSON, embedded by
 * the page as JSON) drawn with Leaflet, the view fitted to them. window.koopOgcMap tells how it
 * went: {ready, features}. */
(function () {
  "use strict";
  var state = { ready: false, features: 0 };
  window.koopOgcMap = state;
  var element = document.getElementById("koop-map");
  var source = document.getElementById("koop-ogc-features");
  if (!element || !source || !window.L) {
    state.ready = true;
    return;
  }
  var data = JSON.parse(source.textContent);
  var map = L.map(element);
  var layer = L.geoJSON(data, {
    pointToLayer: function (feature, latlng) {
      return L.circleMarker(latlng, { radius: 5, color: "#0b4f94", fillColor: "#1f78d1", fillOpacity: 0.8 });
    },
    style: function () { return { color: "#0b4f94", weight: 2, fillColor: "#1f78d1", fillOpacity: 0.3 }; },
    onEachFeature: function (feature, drawn) { drawn.bindTooltip(String(feature.id)); }
  }).addTo(map);
  state.features = data.features.length;
  var bounds = layer.getBounds();
  if (bounds.isValid()) {
    map.fitBounds(bounds, { maxZoom: 14, padding: [10, 10] });
  } else {
    map.setView([0, 0], 1);
  }
  state.ready = true;
}());
