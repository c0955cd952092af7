// What the generated SDK knows about access, read from the same protobuf
// options the gateway enforces: the permission domains (enums marked with
// gateway.v1.domain, their values with gateway.v1.permission) and what each
// method requires (gateway.v1.access, else the service's
// gateway.v1.default_access).

import { getOption, hasOption } from "@bufbuild/protobuf";
import type { DescEnum, DescMethod } from "@bufbuild/protobuf";
import { LicensingPermissionSchema } from "../gen/example/licensing/v1/licensing_pb";
import { OrdersPermissionSchema } from "../gen/example/orders/v1/orders_pb";
import { access, default_access, domain, permission } from "../gen/gateway/v1/options_pb";

/** A permission as the gateway and tokens name it, and as TypeScript does. */
export interface Permission {
  /** The gateway's name, such as "LIC.READ_REQUIREMENTS". */
  name: string;
  /** The generated enum constant, such as "LicensingPermission.READ_REQUIREMENTS". */
  constant: string;
  /** The enum value's number. */
  value: number;
  /** The bit a token's perms claim sets for it. */
  mask: bigint;
  description: string;
}

/** A permission domain: one enum of the SDK. */
export interface Domain {
  name: string;
  description: string;
  permissions: Permission[];
}

/** The domains of the example services. */
export const domains: Domain[] = [LicensingPermissionSchema, OrdersPermissionSchema].map(toDomain);

const byName = new Map(domains.flatMap((d) => d.permissions.map((p) => [p.name, p] as const)));

/** toDomain reads a domain enum of the SDK. */
export function toDomain(e: DescEnum): Domain {
  const d = getOption(e, domain);
  return {
    name: d.name,
    description: d.description,
    permissions: e.values
      .filter((v) => hasOption(v, permission))
      .map((v) => {
        const p = getOption(v, permission);
        return {
          // The enum's value prefix is dropped both by the gateway and by
          // protoc-gen-es, so the names agree.
          name: `${d.name}.${v.localName}`,
          constant: `${e.name}.${v.localName}`,
          value: v.number,
          mask: p.mask,
          description: p.description,
        };
      }),
  };
}

/** What a method declares: public, or the permissions it requires. */
export interface MethodAccess {
  declared: boolean;
  public: boolean;
  requires: Permission[];
}

/** accessOf reads a method's declaration the way the gateway does. */
export function accessOf(m: DescMethod): MethodAccess {
  const a = hasOption(m, access)
    ? getOption(m, access)
    : hasOption(m.parent, default_access)
      ? getOption(m.parent, default_access)
      : undefined;
  if (a === undefined) {
    return { declared: false, public: false, requires: [] };
  }
  return {
    declared: true,
    public: a.public,
    requires: a.requires.map(
      (name) => byName.get(name) ?? { name, constant: "?", value: 0, mask: 0n, description: "unknown permission" },
    ),
  };
}

/** held lists the permissions a token's perms claim grants, such as {"LIC": 3}. */
export function held(perms: Record<string, number>): Permission[] {
  return domains.flatMap((d) => {
    const bits = BigInt(perms[d.name] ?? 0);
    return d.permissions.filter((p) => (bits & p.mask) !== 0n);
  });
}
