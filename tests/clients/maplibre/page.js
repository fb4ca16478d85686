// The MapLibre test page, driven by tests/clients/test_vector_tiles.py through window.koop:
// draw a style (ours, over our XYZ tiles and TileJSON), wait until every tile is loaded, and
// answer what was drawn as plain JSON.
import * as maplibregl from "./node_modules/maplibre-gl/dist/maplibre-gl.mjs";

const errors = [];

// options: {style: URL, center: [lon, lat], zoom, probes: [[lon, lat], ...]}
// Answers the rendered features per source layer, the inked pixels of the whole picture and
// around each probe (a 7 x 7 pixel square), and the errors MapLibre reported.
async function draw(options) {
  // A map that never finishes answers what went wrong instead of hanging the test.
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ timeout: true, errors: errors.splice(0) }), options.timeoutMs ?? 45000);
  });
  try {
    return await Promise.race([drawn(options), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function drawn(options) {
  const map = new maplibregl.Map({
    container: "map",
    style: options.style,
    center: options.center,
    zoom: options.zoom,
    attributionControl: false,
    fadeDuration: 0,
    canvasContextAttributes: { preserveDrawingBuffer: true },
  });
  map.on("error", (event) => errors.push(String(event.error?.message ?? event.error)));
  await new Promise((resolve) => map.once("load", resolve));
  // Every tile loaded and painted ("idle" may have fired already: poll instead).
  await new Promise((resolve) => {
    const check = () => (map.loaded() && map.areTilesLoaded() ? resolve() : setTimeout(check, 50));
    check();
  });
  map.triggerRepaint();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const rendered = {};
  for (const feature of map.queryRenderedFeatures()) {
    rendered[feature.sourceLayer] = (rendered[feature.sourceLayer] ?? 0) + 1;
  }
  const canvas = map.getCanvas();
  const copy = document.createElement("canvas");
  copy.width = canvas.width;
  copy.height = canvas.height;
  const context = copy.getContext("2d");
  context.drawImage(canvas, 0, 0);
  const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
  const ratio = canvas.width / canvas.clientWidth;
  const inked = (x, y) => pixels[(y * copy.width + x) * 4 + 3] > 0;
  let ink = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) ink += 1;
  const probes = (options.probes ?? []).map(([lon, lat]) => {
    const point = map.project([lon, lat]);
    const cx = Math.round(point.x * ratio), cy = Math.round(point.y * ratio);
    let count = 0;
    for (let dy = -3; dy <= 3; dy += 1) {
      for (let dx = -3; dx <= 3; dx += 1) {
        const x = cx + dx, y = cy + dy;
        if (x >= 0 && y >= 0 && x < copy.width && y < copy.height && inked(x, y)) count += 1;
      }
    }
    return { lon, lat, x: cx, y: cy, inked: count };
  });
  const answer = { rendered, ink, probes, errors: errors.splice(0), screenshot: copy.toDataURL() };
  map.remove();
  return answer;
}

window.koop = { draw, version: maplibregl.getVersion?.() ?? null };
window.koopReady = true;
