// Calls zitadel.app.v2beta.AppService/RegenerateClientSecret with published clients:
// @zitadel/proto's own AppService descriptor under @connectrpc/connect's createClient
// (ZITADEL's client package has no v2beta factory).
//
//   node tests/clients/app-v2beta.mjs <transport> <baseUrl> < calls.json
//
// transport: "grpc-web" (@connectrpc/connect-node's gRPC-web transport, binary),
// "connect" (its Connect transport, binary) or "connect-json" (Connect, JSON). calls.json
// is a list of {token, org?, projectId, applicationId, type?}; type "oidc" or "api" sets
// the oneof (isOidc / isApi = true), none leaves it unset; the token travels as
// "Authorization: Bearer <token>". Prints one JSON list: per call, the response's fields
// or the error's code and zitadel.v1.ErrorDetail, as the client library read them.
import { readFileSync } from "node:fs";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AppService } from "@zitadel/proto/zitadel/app/v2beta/app_service_pb.js";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";

const [kind, baseUrl] = process.argv.slice(2);
const calls = JSON.parse(readFileSync(0, "utf8"));

function transport(token) {
  const bearer = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const options = { baseUrl, httpVersion: "1.1", interceptors: [bearer] };
  switch (kind) {
    case "grpc-web":
      return createGrpcWebTransport({ ...options, useBinaryFormat: true });
    case "connect":
      return createConnectTransport({ ...options, useBinaryFormat: true });
    case "connect-json":
      return createConnectTransport({ ...options, useBinaryFormat: false });
    default:
      throw new Error(`unknown transport ${kind}`);
  }
}

const appTypes = {
  oidc: { case: "isOidc", value: true },
  api: { case: "isApi", value: true },
};

const results = [];
for (const call of calls) {
  const client = createClient(AppService, transport(call.token));
  const headers = call.org ? { "x-zitadel-orgid": call.org } : {};
  const request = { projectId: call.projectId, applicationId: call.applicationId };
  if (call.type) request.appType = appTypes[call.type];
  try {
    const res = await client.regenerateClientSecret(request, { headers });
    results.push({ ok: true, clientSecret: res.clientSecret, creationDate: timestampDate(res.creationDate).toISOString() });
  } catch (e) {
    const err = ConnectError.from(e);
    const [detail] = err.findDetails(ErrorDetailSchema);
    results.push({ ok: false, code: err.code, message: err.rawMessage, detailId: detail?.id, detailMessage: detail?.message });
  }
}
console.log(JSON.stringify(results));
