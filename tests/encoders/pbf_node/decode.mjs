// Decode .pbf answers with decoders that are not ours, for tests/encoders/test_pbf.py:
//   node decode.mjs PROTO [--sdk ARCGIS_CORE_DIR] FILE.pbf ...   one JSON object, by file name
//   node decode.mjs PROTO [--sdk ARCGIS_CORE_DIR]                base64 answers on stdin, one a
//                                                               line; one JSON line out for each
// (the tests use the second form: one node process serves the whole session). Each answer gives
//   protobufjs  every field, decoded with our .proto (enums as names, 64-bit integers as decimal
//               strings so that none loses precision, defaults filled in);
//   geojson     arcgis-pbf-parser's GeoJSON of a feature result (it always flips y, so it only
//               means something for upperLeft transforms);
//   sdk         the ArcGIS Maps SDK's own parser (@arcgis/core, as its executeQueryPBF runs it)
//               turning a feature result into Esri JSON in world coordinates, when --sdk
//               names its node_modules/@arcgis/core.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import protobuf from "protobufjs";
import toGeoJSON from "arcgis-pbf-parser";

const args = process.argv.slice(2);
const sdkFlag = args.indexOf("--sdk");
const coreDir = sdkFlag >= 0 ? args.splice(sdkFlag, 2)[1] : null;
const [protoPath, ...files] = args;
const root = new protobuf.Root().loadSync(protoPath, { keepCase: true });
const Message = root.lookupType("esriPBuffer.FeatureCollectionPBuffer");
const options = { enums: String, longs: String, defaults: true, arrays: true, oneofs: true };

let sdk = null;
if (coreDir) {
  const load = (path) => import(pathToFileURL(join(coreDir, path)).href);
  const parser = await load("rest/query/operations/pbfFeatureServiceParser.js");
  const context = await load("rest/query/operations/pbfJSONFeatureSet.js");
  sdk = (bytes) => {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const parsed = parser.parseFeatureQuery(
      buffer, new context.JSONFeatureSetParserContext({ applyTransform: true }));
    return parsed.queryResult?.featureResult ?? null;
  };
}

// JSON has no -0, NaN or Infinity: spell those as strings so that floats come back bit for bit.
function numbers(key, value) {
  if (typeof value === "number" && (Object.is(value, -0) || !Number.isFinite(value))) {
    return Object.is(value, -0) ? "-0" : String(value);
  }
  return value;
}

function attempt(decode) {
  try {
    return decode();
  } catch (error) {
    return { error: String(error && error.stack ? error.stack : error) };
  }
}

function decodeAll(bytes) {
  const entry = { protobufjs: attempt(() => Message.toObject(Message.decode(bytes), options)) };
  if (entry.protobufjs.queryResult?.featureResult) {
    entry.geojson = attempt(() => toGeoJSON(bytes));
    if (sdk) entry.sdk = attempt(() => sdk(bytes));
  }
  return entry;
}

if (files.length) {
  const out = Object.fromEntries(files.map((file) => [file, decodeAll(readFileSync(file))]));
  process.stdout.write(JSON.stringify(out, numbers, 1) + "\n");
} else {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    process.stdout.write(JSON.stringify(decodeAll(Buffer.from(line, "base64")), numbers) + "\n");
  }
}
