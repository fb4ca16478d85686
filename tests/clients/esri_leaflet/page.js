// The Esri Leaflet test page, driven by tests/clients/test_esri_leaflet.py through window.koop.
// Leaflet and Esri Leaflet as they ship (dist/), no basemap: only our layers are drawn.
"use strict";

let current = null;

function errorJson(error) {
  return { name: error?.name ?? "Error", message: error?.message ?? String(error),
           code: error?.code ?? null };
}

// Pixels of the map's canvas that are drawn (not transparent).
function inkPixels(map) {
  const canvas = map.getPanes().overlayPane.querySelector("canvas");
  if (!canvas) return 0;
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let ink = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink += 1;
  return ink;
}

// An L.esri.featureLayer in a fresh map, waited for until its requests are all answered and
// nothing changes for `quietMs`; answers the features it created (one Leaflet layer each).
// options: {url, center: [lat, lng], zoom, fetchAllFeatures?, width?, height?, quietMs?}
async function drawFeatureLayer(options) {
  if (current) current.remove();
  document.body.innerHTML = "";
  const container = document.createElement("div");
  container.style.cssText = `width:${options.width ?? 800}px;height:${options.height ?? 600}px`;
  document.body.append(container);
  const map = L.map(container, { preferCanvas: true, zoomAnimation: false, fadeAnimation: false })
    .setView(options.center, options.zoom);
  current = map;
  const started = performance.now();
  const errors = [];
  let limitExceeded = 0;
  const layer = L.esri.featureLayer({
    url: options.url,
    fetchAllFeatures: Boolean(options.fetchAllFeatures),
    pointToLayer: (feature, latlng) => L.circleMarker(latlng, { radius: 3 }),
  });
  layer.on("requesterror", (event) => errors.push(event.message ?? "request error"));
  layer.on("drawlimitexceeded", () => { limitExceeded += 1; });
  layer.addTo(map);
  // Quiet: no request in flight and the same number of features for quietMs.
  const quietMs = options.quietMs ?? 1000;
  let last = -1;
  let since = performance.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    let count = 0;
    layer.eachFeature(() => { count += 1; });
    const busy = layer._activeRequests > 0;
    if (busy || count !== last) {
      last = count;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      break;
    }
  }
  const features = [];
  layer.eachFeature((leafletLayer) => features.push(leafletLayer.feature));
  return {
    seconds: (performance.now() - started - quietMs) / 1000,
    count: features.length,
    features,
    errors,
    limitExceeded,
    inkPixels: inkPixels(map),
  };
}

// L.esri.query: {url, where, count?: true for .count(), orderBy?: field, fields?: [..]}
function query(options) {
  return new Promise((resolve) => {
    let q = L.esri.query({ url: options.url }).where(options.where);
    if (options.fields) q = q.fields(options.fields);
    if (options.orderBy) q = q.orderBy(options.orderBy, "ASC");
    if (options.count) {
      q.count((error, count) => resolve(error ? { error: errorJson(error) } : { count }));
    } else {
      q.run((error, collection, response) => resolve(error ? { error: errorJson(error) } : {
        features: collection.features,
        exceededTransferLimit: Boolean(response?.exceededTransferLimit
                                       || response?.properties?.exceededTransferLimit),
      }));
    }
  });
}

window.koop = { version: `${L.version} / esri-leaflet ${L.esri.VERSION}`, drawFeatureLayer, query };
window.koopReady = true;
