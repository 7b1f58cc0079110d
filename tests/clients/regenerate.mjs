// Calls RegenerateOIDCClientSecret with published clients, as ZITADEL's users do:
//
//   node tests/clients/regenerate.mjs <transport> <baseUrl> < calls.json
//
// transport: "zitadel-grpc-web" (@zitadel/client's web transport, the one ZITADEL's
// console family uses), "grpc-web" (@connectrpc/connect-node's gRPC-web transport) or
// "connect" (@connectrpc/connect-node's Connect transport, JSON). calls.json is a list of
// {token, org?, projectId, appId, method?}; the token travels as "Authorization: Bearer
// <token>"; method is the ManagementService method (default regenerateOIDCClientSecret;
// regenerateAPIClientSecret takes the same request and answers the same shape).
// Prints one JSON list: per call, the response's fields or the error's code and
// zitadel.v1.ErrorDetail, as the client library read them.
import { readFileSync } from "node:fs";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClientTransport } from "@zitadel/client/web";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";

const [kind, baseUrl] = process.argv.slice(2);
const calls = JSON.parse(readFileSync(0, "utf8"));

function transport(token) {
  const bearer = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  switch (kind) {
    case "zitadel-grpc-web":
      return createClientTransport(token, { baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer] });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors: [bearer] });
    default:
      throw new Error(`unknown transport ${kind}`);
  }
}

const results = [];
for (const call of calls) {
  const client = createClient(ManagementService, transport(call.token));
  const headers = call.org ? { "x-zitadel-orgid": call.org } : {};
  try {
    const method = call.method ?? "regenerateOIDCClientSecret";
    const res = await client[method]({ projectId: call.projectId, appId: call.appId }, { headers });
    results.push({
      ok: true,
      clientSecret: res.clientSecret,
      sequence: res.details.sequence.toString(),
      creationDate: timestampDate(res.details.creationDate).toISOString(),
      changeDate: timestampDate(res.details.changeDate).toISOString(),
      resourceOwner: res.details.resourceOwner,
    });
  } catch (e) {
    const err = ConnectError.from(e);
    const [detail] = err.findDetails(ErrorDetailSchema);
    results.push({ ok: false, code: err.code, message: err.rawMessage, detailId: detail?.id, detailMessage: detail?.message });
  }
}
console.log(JSON.stringify(results));
