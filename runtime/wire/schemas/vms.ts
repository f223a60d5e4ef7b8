// The VM registry as the admin API speaks it. Registration bodies are checked here for shape,
// then by runtime/identity's validateVmRegistration for what only the kernel can tell.
import { Type, type Static } from '@sinclair/typebox';
import { IsoTime, VmIdentity } from './common.ts';

export const VmAnchor = Type.Object(
  {
    rootPid: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Root process of the VM (e.g. its QEMU or launcher); its descendants are members too.',
      }),
    ),
    rootStartTime: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Start time of rootPid (field 22 of /proc/<pid>/stat, clock ticks since boot), read at registration so that a reused pid never matches.',
      }),
    ),
    cgroup: Type.Optional(
      Type.String({
        description: 'cgroup v2 path (as in /proc/<pid>/cgroup, e.g. "/kubepods/pod123"); members are at or below.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'What makes a process a member of the VM: at least one of rootPid or cgroup.',
  },
);
export type VmAnchor = Static<typeof VmAnchor>;

export const RegisteredVm = Type.Object({ identity: VmIdentity, anchor: VmAnchor }, { additionalProperties: false });
export type RegisteredVm = Static<typeof RegisteredVm>;

/** Body of register (POST) and update (PUT). Labels may also be given as an object of strings. */
export const VmRegistration = Type.Object(
  {
    identity: Type.Object(
      {
        uuid: Type.String({ description: 'RFC 4122 uuid.' }),
        name: Type.String(),
        id: Type.Integer({ description: 'Signed 32-bit VM id.' }),
        labels: Type.Optional(
          Type.Union(
            [Type.Array(Type.Tuple([Type.String(), Type.String()])), Type.Record(Type.String(), Type.String())],
            { errorMessage: 'must be a list of [key, value] pairs or an object of string values' },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    anchor: VmAnchor,
  },
  { additionalProperties: false },
);
export type VmRegistration = Static<typeof VmRegistration>;

export const VmRecord = Type.Object({
  identity: VmIdentity,
  anchor: VmAnchor,
  registeredAt: IsoTime('ISO 8601.'),
  updatedAt: IsoTime('ISO 8601.'),
});
export type VmRecord = Static<typeof VmRecord>;

export const ListVmsResponse = Type.Object({ vms: Type.Array(VmRecord) });
export type ListVmsResponse = Static<typeof ListVmsResponse>;

export const VmResponse = Type.Object({ vm: VmRecord });
export type VmResponse = Static<typeof VmResponse>;

export const UnregisterVmResponse = Type.Object({
  unregistered: Type.String({ description: 'The uuid of the VM that was unregistered.' }),
});
export type UnregisterVmResponse = Static<typeof UnregisterVmResponse>;
