// Decode .pbf answers with decoders that are not ours, for tests/encoders/test_pbf.py:
//   node decode.mjs PROTO [ARCGIS_CORE_DIR]
// reads one base64 answer per line on stdin and writes one JSON line per answer:
//   protobufjs  every field, decoded with our .proto (enums as names, 64-bit integers as decimal
//               strings so that none loses precision, defaults filled in);
//   geojson     arcgis-pbf-parser's GeoJSON of a feature result (it always flips y, so it only
//               means something for upperLeft transforms);
//   sdk         the ArcGIS Maps SDK's own parser (@arcgis/core, as its executeQueryPBF runs it)
//               turning a feature result into Esri JSON in world coordinates, when
//               ARCGIS_CORE_DIR (node_modules/@arcgis/core) is given.
// One process serves a whole test session: node starts once.
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import protobuf from "protobufjs";
import toGeoJSON from "arcgis-pbf-parser";

const [protoPath, coreDir] = process.argv.slice(2);
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

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  const bytes = Buffer.from(line, "base64");
  const entry = { protobufjs: attempt(() => Message.toObject(Message.decode(bytes), options)) };
  if (entry.protobufjs.queryResult?.featureResult) {
    entry.geojson = attempt(() => toGeoJSON(bytes));
    if (sdk) entry.sdk = attempt(() => sdk(bytes));
  }
  process.stdout.write(JSON.stringify(entry, numbers) + "\n");
}
