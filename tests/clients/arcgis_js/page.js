// The test page: the ArcGIS Maps SDK for JavaScript, driven by tests/clients/test_arcgis_js.py
// through window.koop. Every function answers plain JSON (errors included) so that a test can
// assert on what the SDK saw without a second round trip.
import esriConfig from "@arcgis/core/config.js";
import has from "@arcgis/core/core/has.js";
import * as reactiveUtils from "@arcgis/core/core/reactiveUtils.js";
import IdentityManager from "@arcgis/core/identity/IdentityManager.js";
import ServerInfo from "@arcgis/core/identity/ServerInfo.js";
import FeatureLayer from "@arcgis/core/layers/FeatureLayer.js";
import VectorTileLayer from "@arcgis/core/layers/VectorTileLayer.js";
import EsriMap from "@arcgis/core/Map.js";
import { version } from "@arcgis/core/kernel.js";
import esriRequest from "@arcgis/core/request.js";
import MapView from "@arcgis/core/views/MapView.js";

// Workers, wasm, translations and styles come from this origin, never from a CDN.
esriConfig.assetsPath = new URL("./assets", document.baseURI).href;
esriConfig.request.timeout = 30000;
esriConfig.log.level = "warn";

// Where the SDK asks a person to sign in (its dialog, on a 499 or 403 without a usable token)
// the page answers as that person would: with the credentials given to answerChallenges, or
// by cancelling, so that the call fails instead of waiting. Each challenge is recorded.
const challenges = [];
let challengeAnswer = null;
IdentityManager.on("dialog-create", () => {
  const dialog = IdentityManager.dialog;
  const challenge = { resource: dialog?.resource ?? null, server: dialog?.server ?? null };
  challenges.push(challenge);
  setTimeout(() => {
    // after the SDK has started listening for "submit" and "cancel"
    if (!challengeAnswer) {
      dialog?.emit("cancel");
      return;
    }
    challenge.answered = challengeAnswer.username;
    dialog?.emit("submit", { ...challengeAnswer });
    // A refused sign-in leaves the dialog open for another try: give up instead.
    reactiveUtils.whenOnce(() => dialog.error).then(() => {
      challenge.error = errorJson(dialog.error);
      dialog.emit("cancel");
    });
  }, 0);
});

// {username, password} to sign in with when challenged, or null to cancel every challenge.
function answerChallenges(credentials) {
  challengeAnswer = credentials ?? null;
}

function errorJson(error) {
  return {
    name: error?.name ?? "Error",
    message: error?.message ?? String(error),
    details: error?.details ? safeJson(error.details) : null,
  };
}

function safeJson(value) {
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return String(value);
  }
}

function layerJson(layer) {
  return {
    title: layer.title,
    geometryType: layer.geometryType,
    objectIdField: layer.objectIdField,
    fields: layer.fields.map((f) => ({ name: f.name, type: f.type, alias: f.alias })),
    extent: layer.fullExtent?.toJSON() ?? null,
    spatialReference: layer.spatialReference?.toJSON() ?? null,
    capabilities: safeJson(layer.capabilities?.query ?? null),
  };
}

function featureJson(graphic) {
  return { attributes: { ...graphic.attributes }, geometry: graphic.geometry?.toJSON() ?? null };
}

async function runQuery(queryable, query) {
  const q = queryable.createQuery();
  Object.assign(q, query);
  const result = await queryable.queryFeatures(q);
  return {
    features: result.features.map(featureJson),
    exceededTransferLimit: Boolean(result.exceededTransferLimit),
  };
}

// How many pixels of the view's picture are drawn (neither transparent nor white): proof
// that the features reached the screen, not only the LayerView.
async function picture(view) {
  const shot = await view.takeScreenshot({ format: "png" });
  const pixels = shot.data.data;
  let ink = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b, a] = pixels.subarray(i, i + 4);
    if (a > 0 && (r < 240 || g < 240 || b < 240)) ink += 1;
  }
  return { ink, dataUrl: shot.dataUrl };
}

// The layer, view and LayerView of the last drawLayer({keep: true}), for queryLayer.
let kept = null;

function release() {
  if (!kept) return;
  kept.view.destroy();
  kept.map.destroy();
  kept.container.remove();
  kept = null;
}

// Draw one FeatureLayer in a fresh MapView in `wkid`, wait until its LayerView has finished
// updating, then report the layer as loaded, the view's feature count and optional queries.
// options: {url, wkid, extent?: Esri extent JSON, center?: [x, y] in wkid with scale?: the map
// scale (then the view is ready before the layer is added, and `seconds` times only the layer:
// from map.add to the LayerView done), width?, height? (800 x 600 px), layerQuery?: query
// properties for layer.queryFeatures, viewQuery?: the same for layerView.queryFeatures,
// screenshot?: true for the view's picture as a PNG data URL, keep?: true to keep the view for
// queryLayer (until the next drawLayer or release)}
async function drawLayer(options) {
  release();
  const container = document.createElement("div");
  container.style.cssText = `width:${options.width ?? 800}px;height:${options.height ?? 600}px`;
  document.body.append(container);
  const layer = new FeatureLayer({ url: options.url, outFields: ["*"] });
  const placed = Boolean(options.extent || options.center);
  const map = new EsriMap({ layers: placed ? [] : [layer] });
  const view = new MapView({
    container,
    map,
    spatialReference: { wkid: options.wkid },
    ui: { components: [] },
    ...(options.extent ? { extent: options.extent } : {}),
    ...(options.center ? {
      center: { x: options.center[0], y: options.center[1], spatialReference: { wkid: options.wkid } },
      scale: options.scale,
    } : {}),
  });
  let started = performance.now();
  try {
    if (placed) {
      await view.when();
      started = performance.now();
      map.add(layer);
    }
    await layer.load();
    if (!placed && layer.fullExtent) {
      await view.when();
      await view.goTo(layer.fullExtent.clone().expand(1.2), { animate: false });
    }
    await view.when();
    const layerView = await view.whenLayerView(layer);
    await reactiveUtils.whenOnce(() => !view.updating && !layerView.updating);
    const seconds = (performance.now() - started) / 1000;
    const shot = await picture(view);
    const answer = {
      layer: layerJson(layer),
      view: {
        spatialReference: view.spatialReference.toJSON(),
        extent: view.extent.toJSON(),
        scale: view.scale,
        featureCount: await layerView.queryFeatureCount(),
        inkPixels: shot.ink,
      },
      seconds,
    };
    if (options.screenshot) answer.screenshot = shot.dataUrl;
    if (options.layerQuery) answer.layerQuery = await runQuery(layer, options.layerQuery);
    if (options.viewQuery) answer.viewQuery = await runQuery(layerView, options.viewQuery);
    if (options.keep) kept = { container, map, view, layer, layerView };
    return answer;
  } catch (error) {
    return { error: errorJson(error), layerError: layer.loadError ? errorJson(layer.loadError) : null };
  } finally {
    if (kept?.view !== view) {
      view.destroy();
      map.destroy();
      container.remove();
    }
  }
}

// Queries on the kept layer (on: "layer", the server) or its LayerView (on: "view", what was
// drawn), in order; each answers plain JSON or {error}.
// specs: [{kind: "count" | "features" | "extent" | "ids", on?: "layer" | "view",
//          query?: Query properties (where, outFields, outStatistics, groupByFieldsForStatistics,
//                  orderByFields, outSpatialReference: {wkid}, returnGeometry, ...)}]
async function queryLayer(specs) {
  if (!kept) return [{ error: { name: "koop", message: "no kept layer: drawLayer({keep: true})" } }];
  const answers = [];
  for (const spec of specs) {
    const target = spec.on === "view" ? kept.layerView : kept.layer;
    const query = target.createQuery();
    Object.assign(query, spec.query ?? {});
    try {
      if (spec.kind === "count") {
        answers.push({ count: await target.queryFeatureCount(query) });
      } else if (spec.kind === "extent") {
        const { count, extent } = await target.queryExtent(query);
        answers.push({ count, extent: extent?.toJSON() ?? null });
      } else if (spec.kind === "ids") {
        answers.push({ ids: await target.queryObjectIds(query) });
      } else {
        const result = await target.queryFeatures(query);
        answers.push({
          features: result.features.map(featureJson),
          exceededTransferLimit: Boolean(result.exceededTransferLimit),
        });
      }
    } catch (error) {
      answers.push({ error: errorJson(error) });
    }
  }
  return answers;
}

// Sign in as ArcGIS clients do: read the token service from `<serverRoot>/rest/info`
// (authInfo.tokenServicesUrl), generate a token with the IdentityManager, and register it for
// each service URL (`<serverRoot>/rest/services/<id>/FeatureServer`) so that the SDK appends it
// to every request to them: the IdentityManager matches an ArcGIS Server token to requests of
// the same service, not of the whole server.
// options: {serverRoot: "http://127.0.0.1:port/<provider>", username, password, services: [url]}
async function signIn(options) {
  try {
    const { data: info } = await esriRequest(`${options.serverRoot}/rest/info`, {
      query: { f: "json" },
      responseType: "json",
    });
    const authInfo = info.authInfo ?? {};
    const serverInfo = new ServerInfo({
      server: options.serverRoot,
      tokenServiceUrl: authInfo.tokenServicesUrl,
      shortLivedTokenValidity: authInfo.shortLivedTokenValidity,
      currentVersion: info.currentVersion,
      hasServer: true,
    });
    IdentityManager.registerServers([serverInfo]);
    const generated = await IdentityManager.generateToken(serverInfo, {
      username: options.username,
      password: options.password,
    });
    for (const service of options.services) {
      registerToken({ server: service, userId: options.username, ...generated });
    }
    return { authInfo, token: generated.token, expires: generated.expires, ssl: generated.ssl };
  } catch (error) {
    return { error: errorJson(error) };
  }
}

// Register a token the page already has (a test's own, or one from signIn).
// options: {server: service URL, token, expires?, ssl?, userId?}
function registerToken(options) {
  IdentityManager.registerToken({
    server: options.server,
    token: options.token,
    expires: options.expires ?? Date.now() + 3600_000,
    ssl: Boolean(options.ssl),
    userId: options.userId,
  });
}

function signOut() {
  IdentityManager.destroyCredentials();
}

// Switch one of the SDK's feature flags, e.g. "featurelayer-pbf-statistics" (off by default:
// statistics queries then go as f=json even where the layer advertises PBF). Answers the old.
function setHas(name, value) {
  const old = has(name);
  has.add(name, value, true, true);
  return old ?? null;
}

// A plain esriRequest, for probing what the SDK sends and receives.
async function request(url, query) {
  try {
    const { data } = await esriRequest(url, { query: { f: "json", ...query }, responseType: "json" });
    return { data };
  } catch (error) {
    return { error: errorJson(error) };
  }
}

// Draw a VectorTileServer with a VectorTileLayer (its default style, resources/styles/root.json)
// in a Web Mercator MapView at the layer's full extent (or options.center [x, y] in 3857 with
// options.scale), wait until it has drawn, and report the layer, its style and the picture.
// options: {url, center?, scale?, screenshot?}
async function drawVectorTileLayer(options) {
  release();
  const container = document.createElement("div");
  container.style.cssText = "width:800px;height:600px";
  document.body.append(container);
  const layer = new VectorTileLayer({ url: options.url });
  const map = new EsriMap({ layers: [layer] });
  const view = new MapView({ container, map, spatialReference: { wkid: 3857 }, ui: { components: [] } });
  try {
    await layer.load();
    await view.when();
    if (options.center) {
      await view.goTo({ center: { x: options.center[0], y: options.center[1], spatialReference: { wkid: 3857 } },
                        scale: options.scale }, { animate: false });
    } else {
      await view.goTo(layer.fullExtent.clone().expand(1.2), { animate: false });
    }
    const layerView = await view.whenLayerView(layer);
    await reactiveUtils.whenOnce(() => !view.updating && !layerView.updating);
    const shot = await picture(view);
    const style = layer.currentStyleInfo?.style ?? null;
    const answer = {
      layer: {
        loaded: layer.loaded,
        title: layer.title,
        lods: layer.tileInfo?.lods?.length ?? 0,
        spatialReference: layer.spatialReference?.toJSON() ?? null,
        fullExtent: layer.fullExtent?.toJSON() ?? null,
        styleLayers: (style?.layers ?? []).map((l) => ({ id: l.id, type: l.type, sourceLayer: l["source-layer"] })),
      },
      view: { scale: view.scale, inkPixels: shot.ink },
    };
    if (options.screenshot) answer.screenshot = shot.dataUrl;
    return answer;
  } catch (error) {
    return { error: errorJson(error), layerError: layer.loadError ? errorJson(layer.loadError) : null };
  } finally {
    view.destroy();
    map.destroy();
    container.remove();
  }
}

window.koop = {
  version,
  drawLayer,
  drawVectorTileLayer,
  queryLayer,
  release,
  setHas,
  hasValue: (name) => has(name) ?? null,
  signIn,
  registerToken,
  signOut,
  request,
  answerChallenges,
  challenges: () => challenges.splice(0),
};
window.koopReady = true;
