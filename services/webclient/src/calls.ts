// The calls the page makes, each with an example request, and how their
// answers and refusals read.

import { ConnectError, Code, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { DescMethod } from "@bufbuild/protobuf";
import { LicenceOrderStatus, LicensingService } from "../gen/example/licensing/v1/licensing_pb";
import type { LicenceOrder } from "../gen/example/licensing/v1/licensing_pb";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb";

/** The ways the page reaches the gateway. */
export const transportNames = {
  "connect-post": "Connect (POST)",
  "connect-get": "Connect (GET)",
  "grpc-web": "gRPC-Web",
} as const;

/** A transport's key in transportNames. */
export type TransportName = keyof typeof transportNames;

/** The licensing client of each transport, all sending auth's headers. */
export function licensingClients(baseUrl: string, auth: Interceptor): Record<TransportName, Client<typeof LicensingService>> {
  const transports: Record<TransportName, Transport> = {
    "connect-post": createConnectTransport({ baseUrl, interceptors: [auth] }),
    // Methods declared NO_SIDE_EFFECTS go as GET, cacheable; others still POST.
    "connect-get": createConnectTransport({ baseUrl, useHttpGet: true, interceptors: [auth] }),
    "grpc-web": createGrpcWebTransport({ baseUrl, interceptors: [auth] }),
  };
  return {
    "connect-post": createClient(LicensingService, transports["connect-post"]),
    "connect-get": createClient(LicensingService, transports["connect-get"]),
    "grpc-web": createClient(LicensingService, transports["grpc-web"]),
  };
}

/** A unary call of the page: its method, example request and summary. */
export interface Call {
  method: DescMethod;
  request: string;
  run(client: Client<typeof LicensingService>): Promise<string>;
}

const m = LicensingService.method;

/** The unary calls, in the order the page lists them. */
export const calls: Call[] = [
  {
    method: m.listJurisdictions,
    request: "{}",
    run: async (c) => {
      const res = await c.listJurisdictions({});
      return res.jurisdictions.map((j) => `${j.code} ${j.name}`).join(", ");
    },
  },
  {
    method: m.listRequirements,
    request: `{jurisdiction: "US-CA", businessKind: "restaurant"}`,
    run: async (c) => {
      const res = await c.listRequirements({ jurisdiction: "US-CA", businessKind: "restaurant" });
      return `${res.requirements.length} licences: ` + res.requirements.map((r) => r.name).join(", ");
    },
  },
  {
    method: m.getLicenceOrder,
    request: `{id: "lo-0001"}`,
    run: async (c) => orderLine((await c.getLicenceOrder({ id: "lo-0001" })).order),
  },
  {
    method: m.createLicenceOrder,
    request: `{requirementId: "us-ca-seller", businessId: "biz-acme"}`,
    run: async (c) => {
      const res = await c.createLicenceOrder({ requirementId: "us-ca-seller", businessId: "biz-acme" });
      return "created " + orderLine(res.order);
    },
  },
];

/** orderLine is one licence order on one line. */
export function orderLine(o: LicenceOrder | undefined): string {
  if (o === undefined) {
    return "no order";
  }
  return `${o.id} ${o.requirementId} for ${o.businessId}: ${LicenceOrderStatus[o.status]}, created by ${o.createdBy}`;
}

/** A refusal as the page shows it: code and message, and the detail. */
export interface Refusal {
  code: string;
  message: string;
  /** From the google.rpc.ErrorInfo detail, if the error has one. */
  reason?: string;
  metadata: [string, string][];
  /** The browser let the page read no answer: fetch itself failed. */
  unreachable: boolean;
}

/** refusal reads an error of a call, with its ErrorInfo detail. */
export function refusal(e: unknown): Refusal {
  const err = ConnectError.from(e);
  const info = err.findDetails(ErrorInfoSchema)[0];
  return {
    code: Code[err.code],
    message: err.rawMessage,
    reason: info?.reason,
    metadata: info ? Object.entries(info.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [],
    // A network failure and a CORS refusal look the same to a page.
    unreachable: err.code === Code.Unknown && err.cause instanceof TypeError,
  };
}
